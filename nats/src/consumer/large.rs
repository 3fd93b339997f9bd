//! Bodies too large to travel inline: fetched from the object store and decompressed off the
//! async workers, before the handle hands their message out.

use async_nats::jetstream::object_store::{GetErrorKind, ObjectStore};
use bytes::Bytes;
use spindle_common::message::Message;
use tokio::io::AsyncReadExt;

use crate::codec::{self, Wire};

/// Why a delivered message could not be turned into a [`Message`].
pub(super) enum Failure {
    /// It never will be (bad JSON, body gone): terminate it.
    Bad(String),
    /// Perhaps later (the body could not be fetched now): redeliver it.
    Unavailable(String),
}

/// A message whose body was read off the async workers.
pub(super) struct Decoded {
    pub(super) message: async_nats::Message,
    pub(super) body: Result<Message, Failure>,
    /// Object holding its body, if any.
    pub(super) object: Option<String>,
}

/// Fetches (from the bucket) and decompresses a large body, off the async workers.
pub(super) async fn decode_large(
    bodies: ObjectStore,
    message: async_nats::Message,
    wire: Wire,
) -> Decoded {
    let (bytes, gzip, object) = match wire {
        Wire::Object { name, gzip } => match fetch(&bodies, &name).await {
            Ok(bytes) => (Bytes::from(bytes), gzip, Some(name)),
            Err(failure) => {
                return Decoded {
                    message,
                    body: Err(failure),
                    object: Some(name),
                };
            }
        },
        Wire::Gzip => (message.payload.clone(), true, None),
        Wire::Plain => (message.payload.clone(), false, None),
    };
    let body = match tokio::task::spawn_blocking(move || codec::decode(&bytes, gzip)).await {
        Ok(decoded) => decoded.map_err(Failure::Bad),
        Err(e) => Err(Failure::Bad(format!("decoder failed: {e}"))),
    };
    Decoded {
        message,
        body,
        object,
    }
}

/// Reads one body from the bucket.
async fn fetch(bodies: &ObjectStore, name: &str) -> Result<Vec<u8>, Failure> {
    let mut object = bodies.get(name).await.map_err(|e| match e.kind() {
        GetErrorKind::NotFound | GetErrorKind::InvalidName => {
            Failure::Bad(format!("body {name} is not in the bucket"))
        }
        _ => Failure::Unavailable(format!("fetching body {name}: {e}")),
    })?;
    let mut bytes = Vec::with_capacity(object.info().size);
    object
        .read_to_end(&mut bytes)
        .await
        .map_err(|e| Failure::Unavailable(format!("reading body {name}: {e}")))?;
    Ok(bytes)
}
