service_kit::main!(auth_service::AuthService);
