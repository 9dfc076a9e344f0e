fn main() -> std::process::ExitCode {
    service_kit::main::<appointment_service::AppointmentService>()
}
