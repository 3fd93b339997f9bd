//! The bus contract ([`spindle_testkit::bus_suite`]) on the in-process bus; the same cases
//! run on JetStream in `nats/tests/nats_bus.rs`.

use std::sync::Arc;

use async_trait::async_trait;
use spindle_common::bus::{Bus, MemoryBus};
use spindle_testkit::bus_suite::BusUnderTest;

/// The in-process bus: one instance, so a "second connection" is the bus itself.
struct Memory(Arc<MemoryBus>);

#[async_trait]
impl BusUnderTest for Memory {
    fn bus(&self) -> Arc<dyn Bus> {
        self.0.clone()
    }

    async fn second(&self) -> Arc<dyn Bus> {
        self.0.clone()
    }
}

async fn open() -> Option<Memory> {
    Some(Memory(Arc::new(MemoryBus::new())))
}

spindle_testkit::bus_conformance!(open());
