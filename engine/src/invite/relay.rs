//! The engine's side of the server relay: join an attempt, post steps, wait for the other side's
//! steps (woken by events, with polling as a safety net), abort.

use std::sync::Arc;
use std::time::{Duration, Instant};

use rand_core::OsRng;
use reqwest::Method;
use serde_bytes::ByteBuf;
use strongroom_protocol::encoding::Encoded;
use strongroom_protocol::invite::{CodeCheck, InviteError, InviteSide, InviteStep};
use strongroom_protocol::sas::SasCode;
use strongroom_protocol::wire::{
    AbortReason, AbortRequest, Ack, AttemptAbort, ErrorCode, JoinAttemptResponse, PostStepRequest,
    StepsResponse,
};

use super::CodeUi;
use crate::connection::{Connection, Credentials, EventStream};
use crate::error::{EngineError, Result};

/// One side's handle on the relayed conversation.
pub(crate) struct Relay<'a> {
    connection: &'a Connection,
    credentials: Credentials<'a>,
    /// `/authenticated/{org}/invitations/{id}` or `/invited/{org}/invitation`.
    base: String,
    events_path: String,
    side: InviteSide,
    attempt: u32,
    events: Option<EventStream>,
    timeout: Duration,
}

/// The sentence for an attempt the other side ended.
fn abort_message(abort: AttemptAbort, me: InviteSide) -> String {
    let who = if abort.by == me {
        "this side"
    } else {
        "the other person"
    };
    match abort.reason {
        AbortReason::WrongCode => {
            format!("{who} picked a wrong code, so the exchange was aborted on both sides")
        }
        AbortReason::ProtocolError => {
            format!("{who} detected tampering, so the exchange was aborted on both sides")
        }
        AbortReason::Interrupted => format!("{who} stopped the exchange"),
    }
}

impl<'a> Relay<'a> {
    pub(crate) fn new(
        connection: &'a Connection,
        credentials: Credentials<'a>,
        base: String,
        events_path: String,
        side: InviteSide,
        timeout: Duration,
    ) -> Self {
        Self {
            connection,
            credentials,
            base,
            events_path,
            side,
            attempt: 0,
            events: None,
            timeout,
        }
    }

    /// Subscribes to events (before anything can be missed), then joins the current attempt.
    pub(crate) async fn join(&mut self) -> Result<()> {
        self.events = match self
            .connection
            .events(&self.events_path, self.credentials)
            .await
        {
            Ok(events) => Some(events),
            Err(e) => {
                tracing::warn!(error = %e, "no event stream; polling instead");
                None
            }
        };
        let joined: JoinAttemptResponse = self
            .connection
            .call(
                Method::POST,
                &format!("{}/join", self.base),
                None,
                self.credentials,
            )
            .await?;
        self.attempt = joined.attempt;
        Ok(())
    }

    pub(crate) fn attempt(&self) -> u32 {
        self.attempt
    }

    pub(crate) async fn post(&self, step: &InviteStep) -> Result<()> {
        let request = PostStepRequest {
            attempt: self.attempt,
            step: ByteBuf::from(step.encode()),
        };
        let result: Result<Ack> = self
            .connection
            .call(
                Method::POST,
                &format!("{}/steps", self.base),
                Some(&request),
                self.credentials,
            )
            .await;
        result.map(drop).map_err(|e| self.explain(e))
    }

    /// Turns the server's attempt refusals into the reason the exchange stopped.
    fn explain(&self, e: EngineError) -> EngineError {
        match e.server_code() {
            Some(ErrorCode::AttemptAborted) | Some(ErrorCode::AttemptMismatch) => {
                EngineError::Aborted(match e {
                    EngineError::Server { message, .. } => message,
                    other => other.to_string(),
                })
            }
            _ => e,
        }
    }

    /// Tells the other side the attempt is over (best effort: the exchange fails anyway).
    pub(crate) async fn abort(&self, reason: AbortReason) {
        let request = AbortRequest {
            attempt: self.attempt,
            reason,
        };
        let result: Result<Ack> = self
            .connection
            .call(
                Method::POST,
                &format!("{}/abort", self.base),
                Some(&request),
                self.credentials,
            )
            .await;
        if let Err(e) = result {
            tracing::warn!(error = %e, "could not abort the attempt on the server");
        }
    }

    async fn steps(&self) -> Result<StepsResponse> {
        self.connection
            .call(
                Method::GET,
                &format!("{}/steps", self.base),
                None,
                self.credentials,
            )
            .await
    }

    /// Checks the attempt is still ours and running; returns the other side's raw steps.
    fn peer_steps(&self, steps: StepsResponse) -> Result<Vec<ByteBuf>> {
        if steps.attempt != self.attempt {
            return Err(EngineError::Aborted(
                "the other side restarted the exchange; run this command again".into(),
            ));
        }
        if let Some(abort) = steps.aborted {
            return Err(EngineError::Aborted(abort_message(abort, self.side)));
        }
        Ok(match self.side {
            InviteSide::Greeter => steps.claimer,
            InviteSide::Claimer => steps.greeter,
        })
    }

    /// Sleeps until an event arrives or a short poll interval passes.
    async fn nap(&mut self) {
        const POLL: Duration = Duration::from_secs(3);
        match &mut self.events {
            Some(events) => match tokio::time::timeout(POLL, events.next()).await {
                Ok(Some(_)) | Err(_) => {}
                Ok(None) => {
                    // The stream ended (server restart?): fall back to polling.
                    self.events = None;
                }
            },
            None => tokio::time::sleep(Duration::from_millis(500)).await,
        }
    }

    /// Waits until the other side posted at least `count` steps; returns them decoded.
    pub(crate) async fn wait_for(&mut self, count: usize) -> Result<Vec<InviteStep>> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let peer = self.peer_steps(self.steps().await?)?;
            if peer.len() >= count {
                return peer
                    .iter()
                    .map(|s| {
                        InviteStep::decode(s)
                            .map_err(|e| EngineError::Invite(InviteError::Malformed(e)))
                    })
                    .collect();
            }
            if Instant::now() > deadline {
                return Err(EngineError::Timeout(self.timeout.as_secs()));
            }
            self.nap().await;
        }
    }

    /// Resolves only if the other side aborts or restarts the attempt.
    async fn watch_for_abort(&mut self) -> EngineError {
        loop {
            match self.steps().await.and_then(|s| self.peer_steps(s)) {
                Ok(_) => self.nap().await,
                Err(e) => return e,
            }
        }
    }

    /// Shows the codes and takes the person's pick, unless the other side aborts first. A wrong
    /// pick (or a code that is not among the choices) aborts the attempt for both sides.
    pub(crate) async fn compare_codes(
        &mut self,
        check: CodeCheck,
        ui: &Arc<dyn CodeUi>,
    ) -> Result<strongroom_protocol::invite::Channel> {
        let own = check.own_code();
        let candidates = check.candidates(&mut OsRng);
        let ui = ui.clone();
        let pick = tokio::task::spawn_blocking(move || ui.exchange_codes(own, candidates));
        let typed = tokio::select! {
            typed = pick => typed
                .map_err(|e| EngineError::InvalidInput(e.to_string()))?
                .map_err(|e| EngineError::io("cannot read the code", e))?,
            e = self.watch_for_abort() => return Err(e),
        };
        let picked = typed
            .trim()
            .parse::<SasCode>()
            .ok()
            .filter(|c| candidates.contains(c));
        match picked.map(|code| check.pick(code)) {
            Some(Ok(channel)) => Ok(channel),
            _ => {
                self.abort(AbortReason::WrongCode).await;
                Err(EngineError::Aborted(format!(
                    "wrong code: {:?} is not the code the other device shows, so the exchange was aborted on both sides \
                     (if you did hear that code, someone may be tampering with the exchange)",
                    typed.trim()
                )))
            }
        }
    }

    /// Tells the other side why this side stops (tampering, interruption), and returns the error.
    pub(crate) async fn fail(&self, e: EngineError) -> EngineError {
        match e {
            EngineError::Invite(_) | EngineError::Trust(_) | EngineError::Protocol(_) => {
                self.abort(AbortReason::ProtocolError).await
            }
            EngineError::Interrupted | EngineError::Timeout(_) => {
                self.abort(AbortReason::Interrupted).await
            }
            _ => {}
        }
        e
    }
}
