//! Spindle's shared vocabulary.
//!
//! Everything the services say to each other lives here: the wire [`message`]s, the
//! [`subject`] names they travel on, the [`bus`] that carries them, the [`store`] that keeps
//! state, the [`project`] model users write, and the URL rules ([`urlnorm`]) that decide when
//! two links are the same page. No service crate depends on another; all depend on this one.
//!
//! It owns the contracts ([`Bus`], the store traits in [`store`], typed errors) and the
//! in-process bus, never their other backends: it must never depend on a database driver,
//! a NATS client or any Spindle crate, so every role compiles only what it uses.

pub mod bus;
pub mod clock;
pub mod cpu;
pub mod events;
pub mod export;
pub mod message;
pub mod netrange;
pub mod project;
pub mod stats;
pub mod store;
pub mod subject;
pub mod urlnorm;

pub use bus::{Bus, BusError, Consumer, ConsumerSpec, Delivery};
pub use clock::{Clock, SystemClock};
pub use message::{
    FetchOptions, Item, Message, NewTasks, Outcome, Page, ProcessJob, Results, Task,
};
pub use project::{Project, ProjectError};
pub use stats::{ProjectStats, StatsBoard};
pub use store::{Store, StoreError};
