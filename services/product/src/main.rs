fn main() -> std::process::ExitCode {
    service_kit::main::<product_service::ProductService>()
}
