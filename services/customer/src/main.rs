service_kit::main!(customer_service::CustomerService);
