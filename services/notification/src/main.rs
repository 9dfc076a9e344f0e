service_kit::main!(notification_service::NotificationService);
