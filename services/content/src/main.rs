service_kit::main!(content_service::ContentService);
