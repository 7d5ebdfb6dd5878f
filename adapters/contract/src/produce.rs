//! The producer side of a [`Dump`]: a bounded body channel, a batching writer and the
//! completion signal, shared by every adapter. Runtime-agnostic (built on
//! [`futures::channel`]); the adapter spawns the producing task on its own runtime.
//!
//! # Protocol
//!
//! [`dump_channel`] returns a connected pair:
//!
//! - the [`Dump`], handed to the core. The core **pulls** `body`; the channel holds at most
//!   [`CHANNEL_CHUNKS`] chunks, so the producer runs at most that far ahead of the consumer
//!   (backpressure). The core awaits `completion` once `body` has ended.
//! - the [`Producer`], moved into the adapter's producing task. The task writes the payload
//!   with [`Producer::write`] / [`Producer::write_bytes`], which batch it into chunks of about
//!   [`CHUNK`] bytes and wait while the channel is full. When the work is over the task
//!   releases its server resources (closes or kills its connection) and then calls
//!   [`Producer::finish`] with the outcome, exactly once:
//!   - `Ok(summary)`: the batch is flushed, `body` ends, `completion` resolves to `Ok`.
//!   - `Err(e)`: whatever is still batched is discarded, a copy of `e` (kind, message, object,
//!     retryability; not its source) is sent as the last item of `body`, `body` ends, and
//!     `completion` resolves to `Err(e)`. The core therefore sees the failure in the body too,
//!     and never mistakes the end of the stream for success.
//!
//! Completion is signalled only by [`Producer::finish`], after `body` is closed. A producer
//! dropped without `finish` (its task panicked or was aborted) ends `body` and resolves
//! `completion` to an [`ErrorKind::Protocol`] error ("the dump task ended without reporting
//! completion").
//!
//! # Cancellation
//!
//! When the consumer drops `body`, every later send fails and the producer's writes return
//! [`cancelled()`] ([`ErrorKind::Cancelled`]); the task should stop, release the server side
//! and report that error through [`Producer::finish`] (which then cannot reach `body` and only
//! resolves `completion`, if anyone still awaits it). A producer that may block on the server
//! for a long time between writes can race its work against [`Producer::closed`] instead of
//! waiting for its next write to notice.

use std::convert::Infallible;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

use bytes::{Bytes, BytesMut};
use futures::channel::{mpsc, oneshot};
use futures::future::{self, FutureExt, Shared};
use futures::{Stream, StreamExt};

use crate::{Dump, DumpMeta, DumpSummary, EngineError, ErrorKind};

/// Output is sent in chunks of about this size: [`Producer::write`] never sends more in one
/// message; [`Producer::write_bytes`] may pass a larger piece through as it is.
pub const CHUNK: usize = 128 * 1024;

/// Chunks the body channel holds before the producer waits for the consumer.
pub const CHANNEL_CHUNKS: usize = 8;

type Item = Result<Bytes, EngineError>;

/// The error a write returns once the consumer has dropped the body
/// ([`ErrorKind::Cancelled`]).
#[must_use]
pub fn cancelled() -> EngineError {
    EngineError::new(
        ErrorKind::Cancelled,
        "the consumer of the dump went away; dump abandoned",
    )
}

/// The error `completion` resolves to when the producer was dropped without
/// [`Producer::finish`].
fn unreported() -> EngineError {
    EngineError::new(
        ErrorKind::Protocol,
        "the dump task ended without reporting completion",
    )
}

/// A copy of `e` for the body stream ([`EngineError`] is not `Clone`; the source stays with
/// the original, which goes to `completion`).
fn body_copy(e: &EngineError) -> EngineError {
    let copy = EngineError::new(e.kind(), e.message().to_owned()).retryable(e.is_retryable());
    match e.object() {
        Some(object) => copy.with_object(object.to_owned()),
        None => copy,
    }
}

/// Create a dump whose body and completion are fed by a [`Producer`] the adapter drives.
///
/// See the [module docs](self) for the protocol. Nothing runs until the adapter moves the
/// producer into a task of its own and writes.
#[must_use]
pub fn dump_channel(meta: DumpMeta) -> (Producer, Dump) {
    // A bounded futures channel holds `buffer + senders` messages; the producer's sender is
    // the only one (never cloned), so this holds exactly CHANNEL_CHUNKS.
    let (tx, rx) = mpsc::channel::<Item>(CHANNEL_CHUNKS - 1);
    let (done_tx, done_rx) = oneshot::channel::<Result<DumpSummary, EngineError>>();
    let (alive_tx, alive_rx) = oneshot::channel::<Infallible>();
    let producer = Producer {
        buf: BytesMut::with_capacity(CHUNK),
        tx,
        done: done_tx,
        gone: alive_rx.shared(),
        written: 0,
    };
    let body = Body {
        rx,
        _alive: alive_tx,
    }
    .boxed();
    let completion = async move { done_rx.await.unwrap_or_else(|_| Err(unreported())) }.boxed();
    let dump = Dump {
        meta,
        body,
        completion,
    };
    (producer, dump)
}

/// The body stream: the channel's receiving half, plus a guard whose drop tells the producer
/// the consumer went away ([`Producer::closed`]).
struct Body {
    rx: mpsc::Receiver<Item>,
    _alive: oneshot::Sender<Infallible>,
}

impl Stream for Body {
    type Item = Item;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Item>> {
        self.rx.poll_next_unpin(cx)
    }
}

/// The writing end of a dump: batches output into [`CHUNK`]-sized messages on the body
/// channel, and reports the outcome with [`Producer::finish`].
///
/// # Cancel safety
///
/// Dropping a pending [`write`](Self::write), [`write_bytes`](Self::write_bytes) or
/// [`flush`](Self::flush) future may lose the bytes being sent; after that the payload is
/// incomplete, and the only sound continuation is [`finish`](Self::finish) with an error (or
/// dropping the producer).
#[derive(Debug)]
pub struct Producer {
    buf: BytesMut,
    tx: mpsc::Sender<Item>,
    done: oneshot::Sender<Result<DumpSummary, EngineError>>,
    gone: Shared<oneshot::Receiver<Infallible>>,
    written: u64,
}

impl Producer {
    /// Append bytes; send each time the batch reaches [`CHUNK`]. A piece larger than a chunk
    /// is sent in chunk-sized slices, so no message of this method exceeds [`CHUNK`].
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Cancelled`] ([`cancelled()`]) when the consumer dropped the body.
    pub async fn write(&mut self, mut data: &[u8]) -> Result<(), EngineError> {
        while !data.is_empty() {
            let room = CHUNK.saturating_sub(self.buf.len()).max(1);
            let n = room.min(data.len());
            self.buf.extend_from_slice(&data[..n]);
            data = &data[n..];
            if self.buf.len() >= CHUNK {
                self.flush().await?;
            }
        }
        Ok(())
    }

    /// Append an owned piece. A piece of at least half a [`CHUNK`] is sent as it is, without a
    /// copy (whatever was batched is sent first, so the order is kept), however large it is:
    /// a message is then as large as the piece. Smaller pieces are batched like
    /// [`write`](Self::write).
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Cancelled`] ([`cancelled()`]) when the consumer dropped the body.
    pub async fn write_bytes(&mut self, data: Bytes) -> Result<(), EngineError> {
        if data.len() >= CHUNK / 2 {
            self.flush().await?;
            self.send(data).await
        } else {
            self.write(&data).await
        }
    }

    /// Send whatever is batched.
    ///
    /// # Errors
    ///
    /// [`ErrorKind::Cancelled`] ([`cancelled()`]) when the consumer dropped the body.
    pub async fn flush(&mut self) -> Result<(), EngineError> {
        if !self.buf.is_empty() {
            let chunk = self.buf.split().freeze();
            self.send(chunk).await?;
            self.buf.reserve(CHUNK);
        }
        Ok(())
    }

    /// Payload bytes handed to the body channel so far (not counting what is still batched).
    #[must_use]
    pub fn written(&self) -> u64 {
        self.written
    }

    /// A future that resolves once the consumer has dropped the body. It does not borrow the
    /// producer, so the producing work (which does) can be raced against it.
    pub fn closed(&self) -> Closed {
        Closed(self.gone.clone())
    }

    /// Report the outcome and end the dump; see the [module docs](self). On `Ok` the batch is
    /// flushed first (if that fails because the consumer went away, the outcome becomes
    /// [`cancelled()`]); on `Err` the batch is discarded and a copy of the error is sent as the
    /// body's last item (waiting for room in the channel, unless the consumer is gone). Then
    /// the body ends and `completion` resolves to the outcome.
    ///
    /// Release server-side resources before calling this: the consumer may act on completion
    /// at once.
    pub async fn finish(mut self, result: Result<DumpSummary, EngineError>) {
        let result = match result {
            Ok(summary) => self.flush().await.map(|()| summary),
            Err(e) => Err(e),
        };
        if let Err(e) = &result {
            let _ = send(&mut self.tx, Err(body_copy(e))).await;
        }
        let Self { tx, done, .. } = self;
        drop(tx);
        let _ = done.send(result);
    }

    async fn send(&mut self, chunk: Bytes) -> Result<(), EngineError> {
        let len = chunk.len() as u64;
        send(&mut self.tx, Ok(chunk)).await?;
        self.written += len;
        Ok(())
    }
}

/// Queue one item: wait only until the channel has room for it, not (like
/// `SinkExt::send`, whose flush waits for room for the *next* item) until it has room for one
/// more, so the channel really holds [`CHANNEL_CHUNKS`] items.
async fn send(tx: &mut mpsc::Sender<Item>, item: Item) -> Result<(), EngineError> {
    future::poll_fn(|cx| tx.poll_ready(cx))
        .await
        .map_err(|_| cancelled())?;
    tx.start_send(item).map_err(|_| cancelled())
}

/// Resolves once the consumer has dropped the body of the dump; see [`Producer::closed`].
#[derive(Debug, Clone)]
#[must_use = "futures do nothing unless polled"]
pub struct Closed(Shared<oneshot::Receiver<Infallible>>);

impl Future for Closed {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        self.0.poll_unpin(cx).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Consistency, PayloadFormat, TableSummary};
    use futures::executor::block_on;
    use futures::future::Either;
    use futures::task::noop_waker_ref;

    fn meta() -> DumpMeta {
        DumpMeta {
            engine: "test".to_owned(),
            format: PayloadFormat::Sql,
            server_version: "1".to_owned(),
            consistency: Consistency::Snapshot,
            size_hint: None,
            tls: None,
        }
    }

    fn summary() -> DumpSummary {
        DumpSummary {
            tables: vec![TableSummary {
                name: "t".to_owned(),
                rows: 1,
                fingerprint: crate::Fingerprint::EMPTY,
            }],
            ..DumpSummary::default()
        }
    }

    /// Every body item (as byte lengths or the error) and the completion.
    fn collect(dump: Dump) -> (Vec<Item>, Result<DumpSummary, EngineError>) {
        block_on(async {
            let items = dump.body.collect::<Vec<_>>().await;
            (items, dump.completion.await)
        })
    }

    fn lens(items: &[Item]) -> Vec<usize> {
        items
            .iter()
            .map(|i| i.as_ref().map_or(usize::MAX, Bytes::len))
            .collect()
    }

    /// Run `work` on the producer, then finish with its outcome, while the body is collected.
    fn run<F>(work: F) -> (Vec<Item>, Result<DumpSummary, EngineError>)
    where
        F: AsyncFnOnce(&mut Producer) -> Result<DumpSummary, EngineError>,
    {
        let (mut producer, dump) = dump_channel(meta());
        block_on(async move {
            let produce = async move {
                let result = work(&mut producer).await;
                producer.finish(result).await;
            };
            let consume = async move {
                let items = dump.body.collect::<Vec<_>>().await;
                (items, dump.completion.await)
            };
            future::join(produce, consume).await.1
        })
    }

    #[test]
    fn small_writes_are_batched_into_chunks_of_exactly_chunk() {
        let (items, done) = run(async |p| {
            for _ in 0..(CHUNK * 2 + 100) / 100 {
                p.write(&[7; 100]).await?;
            }
            Ok(summary())
        });
        // 2622 writes of 100 bytes = 262_200 bytes = 2 × 131_072 + 56.
        assert_eq!(lens(&items), vec![CHUNK, CHUNK, 56]);
        assert_eq!(done.unwrap(), summary());
        let bytes: Vec<u8> = items.into_iter().flat_map(|i| i.unwrap()).collect();
        assert!(bytes.iter().all(|&b| b == 7));
    }

    #[test]
    fn a_write_larger_than_a_chunk_is_sliced_and_order_is_kept() {
        let data: Vec<u8> = (0..CHUNK * 3 + 10).map(|i| i as u8).collect();
        let expected = [b"head".as_slice(), &data].concat();
        let (items, done) = run(async |p| {
            p.write(b"head").await?;
            p.write(&data).await?;
            Ok(summary())
        });
        assert_eq!(lens(&items), vec![CHUNK, CHUNK, CHUNK, 14]);
        done.unwrap();
        let bytes: Vec<u8> = items.into_iter().flat_map(|i| i.unwrap()).collect();
        assert_eq!(bytes, expected);
    }

    #[test]
    fn big_pieces_pass_through_without_copy_after_the_batch() {
        let big = Bytes::from(vec![1u8; CHUNK * 5]);
        let half = Bytes::from(vec![2u8; CHUNK / 2]);
        let (big_ptr, half_ptr) = (big.as_ptr(), half.as_ptr());
        let (items, done) = run(async |p| {
            p.write(b"abc").await?;
            p.write_bytes(big).await?;
            p.write_bytes(half).await?;
            p.write_bytes(Bytes::from_static(b"tail")).await?;
            assert_eq!(p.written(), 3 + CHUNK as u64 * 5 + CHUNK as u64 / 2);
            Ok(summary())
        });
        assert_eq!(lens(&items), vec![3, CHUNK * 5, CHUNK / 2, 4]);
        let ptrs: Vec<_> = items.iter().map(|i| i.as_ref().unwrap().as_ptr()).collect();
        assert_eq!(ptrs[1], big_ptr, "the big piece is not copied");
        assert_eq!(ptrs[2], half_ptr, "half a chunk is not copied");
        assert_eq!(&items[0].as_ref().unwrap()[..], b"abc");
        assert_eq!(&items[3].as_ref().unwrap()[..], b"tail");
        done.unwrap();
    }

    #[test]
    fn small_pieces_are_batched() {
        let (items, _) = run(async |p| {
            p.write_bytes(Bytes::from_static(b"ab")).await?;
            p.write_bytes(Bytes::from(vec![0u8; CHUNK / 2 - 1])).await?;
            p.flush().await?;
            p.flush().await?;
            p.write(b"c").await?;
            Ok(summary())
        });
        assert_eq!(lens(&items), vec![CHUNK / 2 + 1, 1]);
    }

    #[test]
    fn an_error_goes_to_the_body_and_to_completion_and_discards_the_batch() {
        let (items, done) = run(async |p| {
            p.write(&vec![0u8; CHUNK + 5]).await?;
            Err(EngineError::new(ErrorKind::Permission, "denied")
                .with_object("table t")
                .retryable(true)
                .with_source(std::io::Error::other("cause")))
        });
        assert_eq!(lens(&items), vec![CHUNK, usize::MAX]);
        let body_err = items.into_iter().last().unwrap().unwrap_err();
        let done_err = done.unwrap_err();
        for e in [&body_err, &done_err] {
            assert_eq!(e.kind(), ErrorKind::Permission);
            assert_eq!(e.to_string(), "table t: denied");
            assert!(e.is_retryable());
        }
        assert!(std::error::Error::source(&done_err).is_some());
    }

    #[test]
    fn a_dropped_consumer_makes_writes_fail_as_cancelled() {
        let (mut producer, dump) = dump_channel(meta());
        let mut closed = producer.closed();
        let mut cx = Context::from_waker(noop_waker_ref());
        assert!(Pin::new(&mut closed).poll(&mut cx).is_pending());
        drop(dump.body);
        block_on(closed);
        let e = block_on(producer.write(&vec![0u8; CHUNK])).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Cancelled);
        assert_eq!(e.to_string(), cancelled().to_string());
        let e = block_on(producer.write_bytes(Bytes::from(vec![0u8; CHUNK]))).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Cancelled);
        block_on(producer.finish(Err(e)));
        let e = block_on(dump.completion).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Cancelled);
    }

    #[test]
    fn a_dropped_consumer_turns_a_final_flush_into_cancelled() {
        let (mut producer, dump) = dump_channel(meta());
        block_on(producer.write(b"unsent")).unwrap();
        drop(dump.body);
        block_on(producer.finish(Ok(summary())));
        let e = block_on(dump.completion).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Cancelled);
    }

    #[test]
    fn a_producer_dropped_without_finish_is_a_completion_error() {
        let (mut producer, dump) = dump_channel(meta());
        block_on(producer.write_bytes(Bytes::from(vec![3u8; CHUNK]))).unwrap();
        block_on(producer.write(b"batched, never sent")).unwrap();
        drop(producer);
        let (items, done) = collect(dump);
        assert_eq!(lens(&items), vec![CHUNK]);
        let e = done.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Protocol);
        assert_eq!(
            e.to_string(),
            "the dump task ended without reporting completion"
        );
    }

    #[test]
    fn the_channel_holds_channel_chunks_then_waits() {
        let (mut producer, mut dump) = dump_channel(meta());
        for _ in 0..CHANNEL_CHUNKS {
            block_on(producer.write_bytes(Bytes::from(vec![0u8; CHUNK]))).unwrap();
        }
        let mut cx = Context::from_waker(noop_waker_ref());
        {
            let next = producer.write_bytes(Bytes::from(vec![0u8; CHUNK]));
            let mut next = std::pin::pin!(next);
            assert!(next.as_mut().poll(&mut cx).is_pending(), "channel is full");
            // One chunk taken by the consumer makes room.
            assert!(matches!(
                dump.body.poll_next_unpin(&mut cx),
                Poll::Ready(Some(Ok(_)))
            ));
            assert!(matches!(
                block_on(future::select(next, future::pending::<()>())),
                Either::Left((Ok(()), _))
            ));
        }
        block_on(producer.finish(Ok(summary())));
        let (items, done) = collect(dump);
        assert_eq!(items.len(), CHANNEL_CHUNKS);
        done.unwrap();
    }

    #[test]
    fn completion_waits_for_finish_and_closed_stays_pending_while_the_body_lives() {
        let (producer, mut dump) = dump_channel(meta());
        let mut cx = Context::from_waker(noop_waker_ref());
        assert!(dump.completion.poll_unpin(&mut cx).is_pending());
        assert!(dump.body.poll_next_unpin(&mut cx).is_pending());
        let mut closed = producer.closed();
        assert!(Pin::new(&mut closed).poll(&mut cx).is_pending());
        block_on(producer.finish(Ok(DumpSummary::default())));
        assert!(matches!(
            dump.body.poll_next_unpin(&mut cx),
            Poll::Ready(None)
        ));
        assert_eq!(block_on(dump.completion).unwrap(), DumpSummary::default());
    }
}
