fn main() -> std::process::ExitCode {
    service_kit::main::<content_service::ContentService>()
}
