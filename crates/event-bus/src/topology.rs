//! Removing a bus's RabbitMQ topology: test teardown and decommissioning a prefix.

use lapin::options::{ExchangeDeleteOptions, QueueDeleteOptions};

use crate::{BusConfig, BusError};

/// Deletes the queues (and dead-letter queues) of `services` and the bus's exchanges. Queues or
/// exchanges that do not exist are skipped. RabbitMQ only; other backends are left alone.
pub async fn delete_rabbit_topology(config: &BusConfig, services: &[&str]) -> Result<(), BusError> {
    if config.backend != crate::BackendKind::RabbitMq {
        return Ok(());
    }
    let connection =
        lapin::Connection::connect(&config.amqp_url, lapin::ConnectionProperties::default())
            .await
            .map_err(BusError::from)?;
    let queues = services
        .iter()
        .flat_map(|s| [config.queue_name(s), config.dead_letter_queue_name(s)]);
    for queue in queues {
        // A failed delete closes the channel, so each gets its own.
        if let Ok(channel) = connection.create_channel().await {
            let _ = channel
                .queue_delete(queue.as_str().into(), QueueDeleteOptions::default())
                .await;
        }
    }
    for exchange in [config.exchange.clone(), config.dead_letter_exchange()] {
        if let Ok(channel) = connection.create_channel().await {
            let _ = channel
                .exchange_delete(exchange.as_str().into(), ExchangeDeleteOptions::default())
                .await;
        }
    }
    let _ = connection.close(200, "bye".into()).await;
    Ok(())
}
