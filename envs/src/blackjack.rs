//! Blackjack-v1 (Sutton and Barto's Example 5.1) with Gymnasium 1.4.0's rules: an infinite
//! deck (1–9 at 1/13 each, 10 at 4/13), the dealer draws to 17, and the `sab` (Gymnasium's
//! registered default) and `natural` payout options.
//!
//! Observation: one discrete index instead of Gymnasium's tuple (sum, dealer card, usable
//! ace), so that SAC and ES see it one-hot like any discrete state: `(sum·11 + dealer)·2 +
//! ace` is the tuple's row-major index over Discrete(32) × Discrete(11) × Discrete(2), and a
//! natural (a two-card 21, whose payoff differs from a drawn 21) is its own state,
//! `704 + dealer − 1`. 714 states in all.
//!
//! The env deals cards; the exact table is computed separately from the card probabilities,
//! so the two check each other.

use rand::Rng;
use rand_chacha::ChaCha8Rng;

use crate::dynamics::Dynamics;
use crate::render::{Frame, RenderCtx};
use crate::scenes;
use crate::{EnvError, Outcome, Space, TransitionTable};

/// States of the flattened tuple; naturals follow.
const N_TUPLE: usize = 32 * 11 * 2;
pub(crate) const N_STATES: usize = N_TUPLE + 10;
const DECK: [u8; 13] = [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 10, 10, 10];

/// Card values 1..=10 and their probabilities.
fn card_probs() -> [(u8, f64); 10] {
    std::array::from_fn(|i| (i as u8 + 1, if i == 9 { 4.0 / 13.0 } else { 1.0 / 13.0 }))
}

/// The payout rules.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct Rules {
    /// Sutton and Barto's: a natural wins +1 unless the dealer has one too (a draw).
    pub sab: bool,
    /// Without `sab`: a natural that wins pays 1.5.
    pub natural: bool,
}

/// A hand: the sum counting aces as 1, whether it holds an ace, and its number of cards.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
struct Hand {
    raw: u8,
    ace: bool,
    cards: u8,
}

impl Hand {
    fn add(self, c: u8) -> Hand {
        Hand { raw: self.raw + c, ace: self.ace || c == 1, cards: self.cards + 1 }
    }
    fn usable(self) -> bool {
        self.ace && self.raw + 10 <= 21
    }
    fn sum(self) -> u8 {
        self.raw + if self.usable() { 10 } else { 0 }
    }
    fn natural(self) -> bool {
        self.cards == 2 && self.ace && self.raw == 11
    }
    /// 0 when bust.
    fn score(self) -> u8 {
        if self.sum() > 21 {
            0
        } else {
            self.sum()
        }
    }
}

fn tuple_index(sum: usize, dealer: usize, ace: usize) -> usize {
    (sum * 11 + dealer) * 2 + ace
}

fn obs_index(player: Hand, dealer_card: u8) -> usize {
    if player.natural() {
        N_TUPLE + dealer_card as usize - 1
    } else {
        tuple_index(player.sum() as usize, dealer_card as usize, player.usable() as usize)
    }
}

fn cmp(a: u8, b: u8) -> f64 {
    (a > b) as i32 as f64 - ((a < b) as i32 as f64)
}

/// The stick payoff given the dealer's final score and whether the dealer has a natural.
fn payoff(rules: Rules, player: u8, player_natural: bool, dealer: u8, dealer_natural: bool) -> f64 {
    let r = cmp(player, dealer);
    if rules.sab && player_natural && !dealer_natural {
        1.0
    } else if !rules.sab && rules.natural && player_natural && r == 1.0 {
        1.5
    } else {
        r
    }
}

/// Distribution of the dealer's (final score, natural) given the face-up card.
fn dealer_outcomes(up: u8) -> Vec<((u8, bool), f64)> {
    fn play(h: Hand, p: f64, natural: bool, out: &mut Vec<((u8, bool), f64)>) {
        if h.sum() >= 17 {
            let key = (h.score(), natural);
            match out.iter_mut().find(|(k, _)| *k == key) {
                Some((_, q)) => *q += p,
                None => out.push((key, p)),
            }
            return;
        }
        for (c, q) in card_probs() {
            play(h.add(c), p * q, false, out);
        }
    }
    let mut out = Vec::new();
    for (hidden, q) in card_probs() {
        let h = Hand::default().add(up).add(hidden);
        play(h, q, h.natural(), &mut out);
    }
    out
}

/// Blackjack's exact table over the 714 states (terminal and impossible states absorb).
pub(crate) fn blackjack_table(rules: Rules) -> TransitionTable {
    let absorbing = |s: usize| vec![vec![Outcome { prob: 1.0, next_state: s, reward: 0.0, terminated: true }]; 2];
    let dealers: Vec<_> = (1..=10).map(dealer_outcomes).collect();
    let mut p: Vec<Vec<Vec<Outcome>>> = (0..N_STATES).map(absorbing).collect();
    // A representative hand for each live state: which one does not matter, as the sum and
    // the usable ace determine every future (see Hand).
    let mut live: Vec<(usize, Hand, u8)> = Vec::new();
    for d in 1..=10u8 {
        for sum in 4..=21u8 {
            live.push((tuple_index(sum as usize, d as usize, 0), Hand { raw: sum, ace: false, cards: 3 }, d));
            if sum >= 12 {
                live.push((tuple_index(sum as usize, d as usize, 1), Hand { raw: sum - 10, ace: true, cards: 3 }, d));
            }
        }
        live.push((N_TUPLE + d as usize - 1, Hand { raw: 11, ace: true, cards: 2 }, d));
    }
    for (s, hand, d) in live {
        let mut stick: Vec<Outcome> = Vec::new();
        for &((score, dnat), q) in &dealers[d as usize - 1] {
            let reward = payoff(rules, hand.sum(), hand.natural(), score, dnat);
            match stick.iter_mut().find(|o| o.reward == reward) {
                Some(o) => o.prob += q,
                None => stick.push(Outcome { prob: q, next_state: s, reward, terminated: true }),
            }
        }
        let mut hit: Vec<Outcome> = Vec::new();
        for (c, q) in card_probs() {
            let h = hand.add(c);
            let bust = h.sum() > 21;
            let next = obs_index(h, d);
            let (reward, terminated) = if bust { (-1.0, true) } else { (0.0, false) };
            match hit.iter_mut().find(|o| o.next_state == next) {
                Some(o) => o.prob += q,
                None => hit.push(Outcome { prob: q, next_state: next, reward, terminated }),
            }
        }
        // Sums of products of thirteenths round: renormalise so that a certain outcome is
        // exactly 1 (the solvers refuse probabilities above 1).
        for row in [&mut stick, &mut hit] {
            let total: f64 = row.iter().map(|o| o.prob).sum();
            row.iter_mut().for_each(|o| o.prob /= total);
        }
        p[s] = vec![stick, hit];
    }
    let mut initial: Vec<(usize, f64)> = Vec::new();
    for (d, qd) in card_probs() {
        for (c1, q1) in card_probs() {
            for (c2, q2) in card_probs() {
                let s = obs_index(Hand::default().add(c1).add(c2), d);
                match initial.iter_mut().find(|(t, _)| *t == s) {
                    Some((_, q)) => *q += qd * q1 * q2,
                    None => initial.push((s, qd * q1 * q2)),
                }
            }
        }
    }
    TransitionTable { n_states: N_STATES, n_actions: 2, p, initial }
}

/// The Blackjack model: its rules.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Blackjack {
    pub rules: Rules,
}

/// The player's hand and the dealer's two cards (the second face down until the player
/// sticks); the dealer's further cards are drawn when the player sticks.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct BlackjackState {
    player: Hand,
    up: u8,
    hidden: u8,
}

fn draw(rng: &mut ChaCha8Rng) -> u8 {
    DECK[rng.random_range(0..DECK.len())]
}

impl Dynamics for Blackjack {
    type State = BlackjackState;
    type Act = usize;

    fn observation_space(&self) -> Space {
        Space::Discrete(N_STATES)
    }
    fn action_space(&self) -> Space {
        Space::Discrete(2)
    }
    fn obs_dim(&self) -> usize {
        1
    }
    /// The dealer's cards first, then the player's, as Gymnasium deals them.
    fn initial(&self, rng: &mut ChaCha8Rng) -> BlackjackState {
        let (up, hidden) = (draw(rng), draw(rng));
        let player = Hand::default().add(draw(rng)).add(draw(rng));
        BlackjackState { player, up, hidden }
    }
    fn write_obs(&self, s: &BlackjackState, obs: &mut [f32]) {
        obs[0] = obs_index(s.player, s.up) as f32;
    }
    /// 0 sticks (the dealer plays out and the hand is scored), 1 hits.
    fn step(&self, s: &mut BlackjackState, a: usize, rng: &mut ChaCha8Rng) -> (f64, bool) {
        if a == 1 {
            s.player = s.player.add(draw(rng));
            return if s.player.sum() > 21 { (-1.0, true) } else { (0.0, false) };
        }
        let mut dealer = Hand::default().add(s.up).add(s.hidden);
        let dealer_natural = dealer.natural();
        while dealer.sum() < 17 {
            dealer = dealer.add(draw(rng));
        }
        let p = s.player;
        (payoff(self.rules, p.score(), p.natural(), dealer.score(), dealer_natural), true)
    }
    /// `[player's sum with aces as 1, holds an ace (0/1), player's cards, dealer's face-up
    /// card, dealer's hidden card]`.
    fn state_vec(&self, s: &BlackjackState) -> Vec<f64> {
        vec![s.player.raw as f64, s.player.ace as u8 as f64, s.player.cards as f64, s.up as f64, s.hidden as f64]
    }
    fn parse_state(&self, s: &[f64]) -> Result<BlackjackState, EnvError> {
        crate::dynamics::check_state(s, 5, "[player sum (aces as 1), has ace, player cards, dealer card, hidden card]")?;
        let bad = |why: &str| EnvError::BadState { state: s.to_vec(), why: why.to_string() };
        if s.iter().any(|x| x.fract() != 0.0 || *x < 0.0) {
            return Err(bad("every component must be a whole number"));
        }
        let (raw, ace, cards, up, hidden) = (s[0], s[1], s[2], s[3], s[4]);
        if !(1.0..=10.0).contains(&up) || !(1.0..=10.0).contains(&hidden) {
            return Err(bad("the dealer's cards must be 1 (ace) to 10"));
        }
        if ace > 1.0 || !(2.0..=21.0).contains(&cards) || !(2.0..=31.0).contains(&raw) || raw < cards {
            return Err(bad("accepted: has ace 0 or 1, 2 to 21 player cards, a player sum from the cards' count to 31"));
        }
        let player = Hand { raw: raw as u8, ace: ace == 1.0, cards: cards as u8 };
        Ok(BlackjackState { player, up: up as u8, hidden: hidden as u8 })
    }
    fn render_rgb(&self, s: &BlackjackState, _ctx: &RenderCtx<'_>) -> Option<Frame> {
        Some(scenes::blackjack(s.player.sum(), s.up, s.player.usable()))
    }
}

/// The state of Gymnasium's tuple `(sum, dealer card, usable ace)`; `natural` says the hand
/// is a two-card 21 (the tuple does not tell).
pub(crate) fn state_of_tuple(sum: usize, dealer: usize, ace: usize, natural: bool) -> Option<usize> {
    if sum >= 32 || !(1..=10).contains(&dealer) || ace > 1 {
        return None;
    }
    Some(if natural { N_TUPLE + dealer - 1 } else { tuple_index(sum, dealer, ace) })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rows_and_start_are_distributions() {
        for rules in [Rules { sab: true, natural: false }, Rules { sab: false, natural: true }] {
            let t = blackjack_table(rules);
            for row in t.p.iter().flatten() {
                let total: f64 = row.iter().map(|o| o.prob).sum();
                assert!((total - 1.0).abs() < 1e-12, "{row:?}");
            }
            let total: f64 = t.initial.iter().map(|o| o.1).sum();
            assert!((total - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn dealer_busts_most_often_on_a_six() {
        // Sutton and Barto's figures: the dealer busts about 42% of the time showing a 6.
        let bust = |up| dealer_outcomes(up).iter().filter(|((s, _), _)| *s == 0).map(|(_, q)| q).sum::<f64>();
        assert!((bust(6) - 0.423).abs() < 0.01, "{}", bust(6));
        assert!((2..=10).all(|u| bust(u) <= bust(6)));
    }

    #[test]
    fn env_deals_naturals_as_their_own_state() {
        let bj = Blackjack { rules: Rules { sab: true, natural: false } };
        let s = bj.parse_state(&[11.0, 1.0, 2.0, 10.0, 1.0]).unwrap();
        let mut obs = [0.0f32];
        bj.write_obs(&s, &mut obs);
        assert_eq!(obs[0] as usize, state_of_tuple(21, 10, 1, true).unwrap());
        // Both have naturals: a draw under sab.
        let mut st = s;
        let mut rng = crate::dynamics::rng_for(0, 0);
        assert_eq!(bj.step(&mut st, 0, &mut rng), (0.0, true));
    }
}
