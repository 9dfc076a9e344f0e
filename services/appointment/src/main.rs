service_kit::main!(appointment_service::AppointmentService);
