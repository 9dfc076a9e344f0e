// Every proxied request allocates and frees headers, URIs and futures on both runtime threads;
// glibc's malloc/free took ~19% of the gateway's CPU under load, mimalloc a fraction of that.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    service_kit::main::<gateway_service::GatewayService>()
}
