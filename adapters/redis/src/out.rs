//! The body channel: output batched into ~128 KiB chunks (same shape as the PostgreSQL engine).

use bytes::{Bytes, BytesMut};
use exporter_contract::{EngineError, ErrorKind};
use tokio::sync::mpsc;

/// Output is sent in chunks of at most this size (the last one of a batch may be smaller).
pub const CHUNK: usize = 128 * 1024;

/// Chunks the channel holds before the producer waits for the consumer.
pub const CHANNEL_CHUNKS: usize = 8;

pub(crate) fn cancelled() -> EngineError {
    EngineError::new(
        ErrorKind::Cancelled,
        "the consumer of the dump went away; dump abandoned",
    )
}

/// Batches output into [`CHUNK`]-sized messages on the channel.
pub(crate) struct Out {
    buf: BytesMut,
    tx: mpsc::Sender<Result<Bytes, EngineError>>,
}

impl Out {
    pub(crate) fn new(tx: mpsc::Sender<Result<Bytes, EngineError>>) -> Self {
        Self {
            buf: BytesMut::with_capacity(CHUNK),
            tx,
        }
    }

    /// Append bytes; send each time the batch reaches [`CHUNK`] (never more).
    pub(crate) async fn write(&mut self, mut data: &[u8]) -> Result<(), EngineError> {
        while !data.is_empty() {
            let n = (CHUNK - self.buf.len()).min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() >= CHUNK {
                self.flush().await?;
            }
        }
        Ok(())
    }

    /// Append an owned piece: a large one (at most [`CHUNK`]) goes out as is, without a copy.
    pub(crate) async fn write_bytes(&mut self, data: Bytes) -> Result<(), EngineError> {
        if data.len() >= CHUNK / 2 && data.len() <= CHUNK {
            self.flush().await?;
            self.send(data).await
        } else {
            self.write(&data).await
        }
    }

    /// Send whatever is batched.
    pub(crate) async fn flush(&mut self) -> Result<(), EngineError> {
        if !self.buf.is_empty() {
            let chunk = self.buf.split().freeze();
            self.send(chunk).await?;
            self.buf.reserve(CHUNK);
        }
        Ok(())
    }

    async fn send(&mut self, chunk: Bytes) -> Result<(), EngineError> {
        self.tx.send(Ok(chunk)).await.map_err(|_| cancelled())
    }
}
