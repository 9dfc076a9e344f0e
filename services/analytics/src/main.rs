service_kit::main!(analytics_service::AnalyticsService);
