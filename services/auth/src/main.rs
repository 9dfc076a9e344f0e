fn main() -> std::process::ExitCode {
    service_kit::main::<auth_service::AuthService>()
}
