fn main() -> std::process::ExitCode {
    service_kit::main::<customer_service::CustomerService>()
}
