fn main() -> std::process::ExitCode {
    service_kit::main::<analytics_service::AnalyticsService>()
}
