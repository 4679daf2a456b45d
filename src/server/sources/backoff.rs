//! Reconnect schedules of the streaming sources.
//!
//! X documents its own (linear for network errors, exponential for HTTP
//! errors and for 429); Jetstream and Mastodon get a jittered exponential
//! one. Each schedule starts over once a connection has worked.

use std::time::Duration;

/// How the wait grows from one failed attempt to the next.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Growth {
    /// `first`, `first + step`, `first + 2 step`, ...
    Linear { step: Duration },
    /// `first`, `2 first`, `4 first`, ...
    Doubling,
}

/// One reconnect schedule: the wait before each attempt since the last
/// connection that worked.
#[derive(Clone, Debug)]
pub struct Backoff {
    first: Duration,
    growth: Growth,
    max: Duration,
    /// Randomise each wait down to half of it (never above it), so that many
    /// servers cut off at once do not come back at once.
    jitter: bool,
    attempt: u32,
}

impl Backoff {
    pub fn new(first: Duration, growth: Growth, max: Duration) -> Backoff {
        Backoff {
            first,
            growth,
            max,
            jitter: false,
            attempt: 0,
        }
    }

    pub fn with_jitter(mut self) -> Backoff {
        self.jitter = true;
        self
    }

    /// The wait before the next attempt; each call moves the schedule on.
    pub fn next_delay(&mut self) -> Duration {
        let attempt = self.attempt;
        self.attempt = self.attempt.saturating_add(1);
        let plain = match self.growth {
            Growth::Linear { step } => self.first.saturating_add(step.saturating_mul(attempt)),
            Growth::Doubling => self
                .first
                .saturating_mul(2u32.saturating_pow(attempt.min(31))),
        }
        .min(self.max);
        if self.jitter {
            plain.mul_f64(0.5 + fastrand::f64() * 0.5)
        } else {
            plain
        }
    }

    /// Attempts made since the last reset.
    pub fn attempts(&self) -> u32 {
        self.attempt
    }

    /// A connection worked: the next failure starts the schedule again.
    pub fn reset(&mut self) {
        self.attempt = 0;
    }
}

/// A short, human wait for `upstream` details: `250 ms`, `5 s`, `2 min`.
pub fn describe(delay: Duration) -> String {
    let ms = delay.as_millis();
    if ms < 1000 {
        format!("{ms} ms")
    } else if ms < 120_000 {
        format!("{} s", (ms + 500) / 1000)
    } else {
        format!("{} min", (ms + 30_000) / 60_000)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn secs(s: f64) -> Duration {
        Duration::from_secs_f64(s)
    }

    #[test]
    fn linear_schedule_grows_by_its_step_up_to_its_cap() {
        let mut b = Backoff::new(
            Duration::ZERO,
            Growth::Linear {
                step: Duration::from_millis(250),
            },
            secs(16.0),
        );
        let seen: Vec<_> = (0..4).map(|_| b.next_delay()).collect();
        assert_eq!(seen, [secs(0.0), secs(0.25), secs(0.5), secs(0.75)]);
        for _ in 0..100 {
            b.next_delay();
        }
        assert_eq!(b.next_delay(), secs(16.0));
        b.reset();
        assert_eq!(b.next_delay(), Duration::ZERO);
    }

    #[test]
    fn doubling_schedule_caps_and_never_overflows() {
        let mut b = Backoff::new(secs(5.0), Growth::Doubling, secs(320.0));
        let seen: Vec<_> = (0..8).map(|_| b.next_delay()).collect();
        assert_eq!(
            seen,
            [5.0, 10.0, 20.0, 40.0, 80.0, 160.0, 320.0, 320.0].map(secs)
        );
        for _ in 0..1000 {
            assert_eq!(b.next_delay(), secs(320.0));
        }
    }

    #[test]
    fn jitter_stays_between_half_and_the_plain_wait() {
        let mut b = Backoff::new(secs(2.0), Growth::Doubling, secs(8.0)).with_jitter();
        for plain in [2.0, 4.0, 8.0, 8.0, 8.0] {
            let d = b.next_delay();
            assert!(
                d >= secs(plain / 2.0) && d <= secs(plain),
                "{d:?} for {plain}"
            );
        }
    }

    #[test]
    fn waits_read_well() {
        assert_eq!(describe(Duration::from_millis(250)), "250 ms");
        assert_eq!(describe(secs(5.0)), "5 s");
        assert_eq!(describe(secs(320.0)), "5 min");
    }
}
