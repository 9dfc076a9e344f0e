//! Payments, Stripe webhooks, invoices and refunds, against a real Postgres and an in-process
//! fake Stripe (`stripe-fake`) that async-stripe talks to over HTTP.

mod audit;
mod flow;
mod intents;
mod invoices;
mod refunds;
mod support;
mod webhooks;
