fn main() -> std::process::ExitCode {
    service_kit::main::<notification_service::NotificationService>()
}
