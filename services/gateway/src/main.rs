service_kit::main!(gateway_service::GatewayService);
