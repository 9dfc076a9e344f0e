fn main() -> std::process::ExitCode {
    service_kit::main::<gateway_service::GatewayService>()
}
