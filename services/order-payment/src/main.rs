service_kit::main!(order_payment_service::OrderPaymentService);
