/* approval 0.5.0 -> 0.6.0: acting from anywhere and on real data (DESIGN §2,
 * §10) — actionable tokens (issue_token, redeem_token, revoke_tokens),
 * governed tables (govern, ungovern, approval.governed), and (in the
 * library) approval.actor_claim for PostgREST's request.jwt.claims. */

\echo Use "ALTER EXTENSION approval UPDATE TO '0.6.0'" to load this file. \quit
