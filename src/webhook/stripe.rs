//! Stripe
