//! A write transaction that can send its writes in a task of its own while its caller
//! goes on: a reprioritization pass builds the statements of its next chunk (events and
//! task rows serialized, on this thread) while SQLite's connection thread writes the last
//! one, instead of each waiting for the other.

use crate::StoreError;
use std::future::Future;
use tokio::task::JoinHandle;

/// A write in flight: it hands the transaction back when done.
type Sending<T> = JoinHandle<(T, Result<(), StoreError>)>;

/// A transaction `T`, or the write in flight that holds it.
#[derive(Debug)]
pub(crate) struct InFlight<T> {
    tx: Option<T>,
    sending: Option<Sending<T>>,
}

impl<T: Send + 'static> InFlight<T> {
    pub(crate) fn new(tx: T) -> Self {
        Self {
            tx: Some(tx),
            sending: None,
        }
    }

    /// The transaction, once the write in flight (if any) has landed; that write's
    /// error, if it failed (the caller then drops the transaction, which rolls back).
    pub(crate) async fn get(&mut self) -> Result<&mut T, StoreError> {
        if let Some(sending) = self.sending.take() {
            let (tx, landed) = match sending.await {
                Ok(done) => done,
                Err(e) if e.is_panic() => std::panic::resume_unwind(e.into_panic()),
                Err(e) => return Err(StoreError::Invalid(format!("a write stopped: {e}"))),
            };
            self.tx = Some(tx);
            landed?;
        }
        self.tx.as_mut().ok_or_else(lost)
    }

    /// Starts `write` on the transaction in a task of its own, after the write before
    /// it: the next [`InFlight::get`] waits for it. Dropped meanwhile, the task still
    /// ends, and drops the transaction then.
    pub(crate) async fn send<F, Fut>(&mut self, write: F) -> Result<(), StoreError>
    where
        F: FnOnce(T) -> Fut,
        Fut: Future<Output = (T, Result<(), StoreError>)> + Send + 'static,
    {
        self.get().await?;
        if let Some(tx) = self.tx.take() {
            self.sending = Some(tokio::spawn(write(tx)));
        }
        Ok(())
    }

    /// The transaction itself, once every write has landed.
    pub(crate) async fn into_inner(mut self) -> Result<T, StoreError> {
        self.get().await?;
        self.tx.take().ok_or_else(lost)
    }
}

/// A write task that ended without handing the transaction back (it was cancelled).
fn lost() -> StoreError {
    StoreError::Invalid("the transaction was lost with a write".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_write_lands_before_the_next_use_and_its_error_is_reported_there() {
        let mut t = InFlight::new(Vec::<u32>::new());
        t.send(|mut v| async move {
            tokio::task::yield_now().await;
            v.push(1);
            (v, Ok(()))
        })
        .await
        .unwrap();
        // The second write starts only once the first has landed.
        t.send(|mut v| async move {
            v.push(2);
            (v, Err(StoreError::Invalid("refused".into())))
        })
        .await
        .unwrap();
        let e = t.get().await.unwrap_err();
        assert!(e.to_string().contains("refused"), "{e}");
        // The transaction is back, with both writes, for the caller to drop.
        assert_eq!(t.into_inner().await.unwrap(), vec![1, 2]);
    }
}
