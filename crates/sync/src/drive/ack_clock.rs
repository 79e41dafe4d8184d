//! When an acknowledgement is overdue: TCP's retransmission timer
//! (RFC 6298) over batches instead of segments.
//!
//! A batch is acknowledged once the peer has applied it, so how long that
//! takes is not a network round trip: it is the peer's queue. A national
//! node taking in ten provinces at once applies each one's batches in
//! turn, and a province's next acknowledgement can be a minute away while
//! nothing is wrong. So the deadline is taken from the oldest batch in
//! flight (not from whatever frame came last) and from the acknowledgement
//! times this peer has shown: a smoothed time plus four times its mean
//! deviation, never below the configured `ack_timeout` and never above
//! [`CEILING_FACTOR`] times it. Each timeout doubles it until an
//! acknowledgement comes.
//!
//! A session's stream is reliable and ordered, and the peer answers every
//! batch with an acknowledgement or ends the session: an overdue batch is
//! late, never lost, and sending it again on the same stream would only
//! queue it a second time behind the first. So the driver waits, and
//! gives up on the session (the next one resumes from the checkpoint)
//! when the peer has sent nothing through several deadlines, or when the
//! oldest batch has waited the whole ceiling.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::time::Instant;

/// The deadline never exceeds this many times the configured timeout: a
/// peer that has taken minutes per batch still gets found out.
pub const CEILING_FACTOR: u32 = 20;

#[derive(Debug)]
pub struct AckClock {
    floor: Duration,
    ceiling: Duration,
    /// The smoothed acknowledgement time and its mean deviation; None
    /// before the first measurement.
    srtt: Option<(Duration, Duration)>,
    /// Timeouts since the last measurement: each doubles the deadline.
    backoff: u32,
    /// Batches sent and not yet acknowledged, oldest first, with when
    /// each went to the transport.
    sent: VecDeque<(u64, Instant)>,
}

impl AckClock {
    pub fn new(floor: Duration) -> Self {
        AckClock {
            floor,
            ceiling: floor * CEILING_FACTOR,
            srtt: None,
            backoff: 0,
            sent: VecDeque::new(),
        }
    }

    /// Batch `id` went to the transport at `at`.
    pub fn sent(&mut self, id: u64, at: Instant) {
        self.sent.push_back((id, at));
    }

    /// The session's oldest batch still unacknowledged is now `oldest`
    /// (None: none is). Every batch sent before it was acknowledged by
    /// `at`, and is measured.
    pub fn settled(&mut self, oldest: Option<u64>, at: Instant) {
        while let Some(&(id, sent_at)) = self.sent.front() {
            if oldest.is_some_and(|o| id >= o) {
                break;
            }
            self.sent.pop_front();
            self.measure(at.saturating_duration_since(sent_at));
        }
    }

    fn measure(&mut self, took: Duration) {
        self.backoff = 0;
        self.srtt = Some(match self.srtt {
            None => (took, took / 2),
            Some((srtt, var)) => {
                let dev = srtt.abs_diff(took);
                (srtt * 7 / 8 + took / 8, var * 3 / 4 + dev / 4)
            }
        });
    }

    /// How long the oldest batch in flight may wait for its
    /// acknowledgement.
    pub fn timeout(&self) -> Duration {
        let base = match self.srtt {
            None => self.floor,
            Some((srtt, var)) => (srtt + var * 4).clamp(self.floor, self.ceiling),
        };
        base.saturating_mul(1 << self.backoff.min(16))
            .min(self.ceiling)
    }

    /// When the oldest batch in flight is overdue; None when none is in
    /// flight.
    pub fn deadline(&self) -> Option<Instant> {
        self.sent.front().map(|&(_, at)| at + self.timeout())
    }

    /// The deadline passed: the next one is twice as far (the batches
    /// stay in flight).
    pub fn timed_out(&mut self) {
        self.backoff = self.backoff.saturating_add(1);
    }

    /// How long the oldest batch in flight has waited at `now`.
    pub fn waited(&self, now: Instant) -> Duration {
        self.sent
            .front()
            .map(|&(_, at)| now.saturating_duration_since(at))
            .unwrap_or_default()
    }

    /// The longest any batch is waited for.
    pub fn ceiling(&self) -> Duration {
        self.ceiling
    }

    /// The session rewound for a reason of its own (a batch found lost):
    /// what was in flight is not measured.
    pub fn forget(&mut self) {
        self.sent.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLOOR: Duration = Duration::from_secs(30);

    fn ms(n: u64) -> Duration {
        Duration::from_millis(n)
    }

    #[test]
    fn before_any_measurement_the_deadline_is_the_configured_one_from_the_oldest_batch() {
        let t0 = Instant::now();
        let mut c = AckClock::new(FLOOR);
        assert_eq!(c.deadline(), None);
        c.sent(1, t0);
        c.sent(2, t0 + ms(500));
        assert_eq!(c.deadline(), Some(t0 + FLOOR));
        // Batch 1 acknowledged: the deadline runs from batch 2's send.
        c.settled(Some(2), t0 + ms(800));
        assert_eq!(c.deadline(), Some(t0 + ms(500) + FLOOR));
        c.settled(None, t0 + ms(900));
        assert_eq!(c.deadline(), None);
    }

    #[test]
    fn a_peer_whose_queue_grows_gets_a_deadline_that_grows_with_it() {
        let mut c = AckClock::new(FLOOR);
        let mut t = Instant::now();
        // Acknowledgements 5 s apart at first, then 2 s longer each time,
        // up to 65 s: more than twice the configured timeout, and each
        // comes before its deadline.
        for (id, secs) in (1u64..).zip((5u64..=65).step_by(2)) {
            c.sent(id, t);
            let took = Duration::from_secs(secs);
            assert!(
                took < c.timeout(),
                "batch {id}: {took:?} against {:?}",
                c.timeout()
            );
            t += took;
            c.settled(None, t);
        }
        assert!(c.timeout() > Duration::from_secs(65), "{:?}", c.timeout());
    }

    #[test]
    fn timeouts_double_the_deadline_up_to_the_ceiling_and_an_acknowledgement_ends_the_backoff() {
        let t0 = Instant::now();
        let mut c = AckClock::new(FLOOR);
        c.sent(1, t0);
        c.timed_out();
        assert_eq!(c.deadline(), Some(t0 + FLOOR * 2), "still waited for");
        assert_eq!(c.waited(t0 + FLOOR), FLOOR);
        assert_eq!(c.timeout(), FLOOR * 2);
        c.timed_out();
        assert_eq!(c.timeout(), FLOOR * 4);
        for _ in 0..10 {
            c.timed_out();
        }
        assert_eq!(c.timeout(), FLOOR * CEILING_FACTOR);
        assert_eq!(c.ceiling(), FLOOR * CEILING_FACTOR);
        // Batch 1 is acknowledged at last, after 600 s, and batch 2 a
        // second after it was sent: the backoff ends, and the deadline
        // remembers how slow this peer has been.
        c.sent(2, t0 + Duration::from_secs(599));
        c.settled(Some(2), t0 + Duration::from_secs(600));
        assert!(c.timeout() > FLOOR, "{:?}", c.timeout());
        assert_eq!(
            c.deadline(),
            Some(t0 + Duration::from_secs(599) + c.timeout())
        );
        c.settled(None, t0 + Duration::from_secs(601));
        assert_eq!(c.backoff, 0);
        assert_eq!(c.waited(t0 + Duration::from_secs(700)), Duration::ZERO);
    }

    #[test]
    fn a_batch_forgotten_by_a_rewind_is_not_measured() {
        let t0 = Instant::now();
        let mut c = AckClock::new(FLOOR);
        c.sent(1, t0);
        c.forget();
        // A late acknowledgement of batch 1 settles nothing.
        c.settled(None, t0 + Duration::from_secs(500));
        assert_eq!(c.timeout(), FLOOR);
        assert_eq!(c.srtt, None);
    }
}
