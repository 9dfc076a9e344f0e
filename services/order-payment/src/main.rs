fn main() -> std::process::ExitCode {
    service_kit::main::<order_payment_service::OrderPaymentService>()
}
