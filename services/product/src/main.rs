service_kit::main!(product_service::ProductService);
