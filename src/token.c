/*-------------------------------------------------------------------------
 *
 * token.c
 *	  Actionable tokens (DESIGN §10): approve and reject buttons in email or
 *	  chat.  issue_token() makes one for an approver of a request,
 *	  redeem_token() records its approver's decision (revoke_tokens() and
 *	  the revocation of a principal's tokens are in token_revoke.c).
 *
 * A token is, in base64url without padding,
 *
 *	version (1) | key id (4) | random id (16) | request (8) | expiry (8) |
 *	approver (1..TOKEN_MAX_APPROVER) | HMAC-SHA256 of all that (32)
 *
 * (integers big-endian, the expiry in PostgreSQL's microseconds), signed
 * with a key of approval.token_key that its id names.  CREATE EXTENSION
 * makes a key (new_token_key()); a restore of a dump runs CREATE EXTENSION,
 * which makes another, then loads the dumped keys beside it, so tokens
 * signed before the dump still verify; new tokens are signed with the
 * newest key.  Only the extension's owner can read that table.
 *
 * The signature is checked first, in constant time, before anything is
 * looked up, so a refusal says nothing about other tokens.  The database
 * keeps a sha256 of each token, never the token, and not its random id
 * either: its row has an id of its own, so that whoever holds a key (a
 * dump has them) and reads approval.token cannot rebuild the tokens, and a
 * key alone signs nothing that redeems.  redeem_token() finds the
 * row by that hash and locks it (FOR UPDATE), so of two concurrent
 * redemptions one records the decision and the other finds it used.  The
 * vote itself takes the one path of every change (engine.h): the request
 * opened for the token's approver, decide_vote() as for approve(), saved by
 * request_done().  A token's row records the request's rounds at issue
 * (request_rounds()): once the request is resubmitted, the token decides
 * nothing.  Refusals of a token are AP009, each saying why.
 *
 *-------------------------------------------------------------------------
 */
#include "engine.h"

#include "catalog/pg_type.h"
#include "common/cryptohash.h"
#include "common/hmac.h"
#include "common/sha2.h"
#include "miscadmin.h"
#include "port/pg_bswap.h"
#include "utils/acl.h"
#include "utils/timestamp.h"

#define TOKEN_VERSION		1
#define TOKEN_KEY_LEN		32	/* bytes of a secret */
#define TOKEN_ID_LEN		16	/* bytes of a token's random id */
#define TOKEN_MAC_LEN		PG_SHA256_DIGEST_LENGTH
#define TOKEN_FIXED_LEN		(1 + 4 + TOKEN_ID_LEN + 8 + 8)
#define TOKEN_MAX_APPROVER	200 /* bytes of an approver id in a token */
#define TOKEN_MAX_LEN		(TOKEN_FIXED_LEN + TOKEN_MAX_APPROVER + TOKEN_MAC_LEN)

/* A token's fields, as decoded */
typedef struct Token
{
	int32		key_id;
	uint8		id[TOKEN_ID_LEN];
	int64		request;
	TimestampTz expires;
	char		approver[TOKEN_MAX_APPROVER + 1];
	uint8		bytes[TOKEN_MAX_LEN];	/* the whole token */
	int			len;
} Token;

/* ---------- statements ---------- */

static ApprovalPlan insert_key_plan = {
	"INSERT INTO approval.token_key (id, secret) VALUES ($1, $2)"
	" ON CONFLICT (id) DO NOTHING",
	2, {INT4OID, BYTEAOID}
};

/* the newest key signs (a restore's fresh key, or the last rotation) */
static ApprovalPlan current_key_plan = {
	"SELECT id, secret FROM approval.token_key ORDER BY created_at DESC, id DESC LIMIT 1",
	0, {InvalidOid}
};

static ApprovalPlan key_plan = {
	"SELECT secret FROM approval.token_key WHERE id = $1",
	1, {INT4OID}
};

static ApprovalPlan insert_token_plan = {
	"INSERT INTO approval.token (id, hash, key_id, request_id, approver, issued_by,"
	"  issued_at, expires_at, rounds)"
	" VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
	9, {TEXTOID, BYTEAOID, INT4OID, INT8OID, TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
	INT4OID}
};

static ApprovalPlan lock_token_plan = {
	"SELECT id, request_id, approver, expires_at, used_at, revoked_at, rounds"
	"  FROM approval.token WHERE hash = $1 FOR UPDATE",
	1, {BYTEAOID}
};

static ApprovalPlan use_token_plan = {
	"UPDATE approval.token SET used_at = $2, used_by = $3, decision = $4 WHERE id = $1",
	4, {TEXTOID, TIMESTAMPTZOID, TEXTOID, TEXTOID}
};


/* ---------- encoding ---------- */

static const char b64url[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* base64url without padding; dst has room for (len * 4 + 2) / 3 + 1 */
static void
b64url_encode(const uint8 *src, int len, char *dst)
{
	uint32		acc = 0;
	int			bits = 0;
	char	   *p = dst;

	for (int i = 0; i < len; i++)
	{
		acc = (acc << 8) | src[i];
		bits += 8;
		while (bits >= 6)
		{
			bits -= 6;
			*p++ = b64url[(acc >> bits) & 0x3f];
		}
	}
	if (bits > 0)
		*p++ = b64url[(acc << (6 - bits)) & 0x3f];
	*p = '\0';
}

/*
 * Decode base64url without padding into dst (room for max bytes): the
 * number of bytes, or -1 unless the text is the one encoding of them (no
 * other character, no dangling bits), so one token has one spelling.
 */
static int
b64url_decode(const char *src, int srclen, uint8 *dst, int max)
{
	uint32		acc = 0;
	int			bits = 0;
	int			n = 0;

	if (srclen % 4 == 1)
		return -1;
	for (int i = 0; i < srclen; i++)
	{
		const char *c = (src[i] == '\0') ? NULL : strchr(b64url, src[i]);

		if (c == NULL)
			return -1;
		acc = (acc << 6) | (uint32) (c - b64url);
		bits += 6;
		if (bits >= 8)
		{
			bits -= 8;
			if (n >= max)
				return -1;
			dst[n++] = (uint8) ((acc >> bits) & 0xff);
		}
	}
	if ((acc & ((1U << bits) - 1)) != 0)
		return -1;
	return n;
}

static void
put_be32(uint8 *p, uint32 v)
{
	v = pg_hton32(v);
	memcpy(p, &v, 4);
}

static void
put_be64(uint8 *p, uint64 v)
{
	v = pg_hton64(v);
	memcpy(p, &v, 8);
}

static uint32
get_be32(const uint8 *p)
{
	uint32		v;

	memcpy(&v, p, 4);
	return pg_ntoh32(v);
}

static uint64
get_be64(const uint8 *p)
{
	uint64		v;

	memcpy(&v, p, 8);
	return pg_ntoh64(v);
}

static char *
hex_text(const uint8 *p, int len)
{
	static const char digits[] = "0123456789abcdef";
	char	   *s = palloc(len * 2 + 1);

	for (int i = 0; i < len; i++)
	{
		s[2 * i] = digits[p[i] >> 4];
		s[2 * i + 1] = digits[p[i] & 0xf];
	}
	s[len * 2] = '\0';
	return s;
}

/* ---------- cryptography ---------- */

static void
random_bytes(void *buf, size_t len)
{
	if (!pg_strong_random(buf, len))
		ereport(ERROR,
				(errcode(ERRCODE_INTERNAL_ERROR),
				 errmsg("could not generate random bytes for a token")));
}

/* HMAC-SHA256 of data under key */
static void
token_mac(const uint8 *key, const uint8 *data, int len, uint8 *mac)
{
	pg_hmac_ctx *ctx = pg_hmac_create(PG_SHA256);

	if (ctx == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("out of memory")));
	if (pg_hmac_init(ctx, key, TOKEN_KEY_LEN) < 0 ||
		pg_hmac_update(ctx, data, len) < 0 ||
		pg_hmac_final(ctx, mac, TOKEN_MAC_LEN) < 0)
	{
#if PG_VERSION_NUM >= 150000
		const char *msg = pstrdup(pg_hmac_error(ctx));
#else
		const char *msg = "unknown error";
#endif

		pg_hmac_free(ctx);
		elog(ERROR, "HMAC-SHA256 failed: %s", msg);
	}
	pg_hmac_free(ctx);
}

/* The sha256 of a token, as the database keeps it */
static bytea *
token_hash(const uint8 *data, int len)
{
	pg_cryptohash_ctx *ctx = pg_cryptohash_create(PG_SHA256);
	bytea	   *result = palloc(VARHDRSZ + PG_SHA256_DIGEST_LENGTH);

	if (ctx == NULL || pg_cryptohash_init(ctx) < 0 ||
		pg_cryptohash_update(ctx, data, len) < 0 ||
#if PG_VERSION_NUM >= 150000
		pg_cryptohash_final(ctx, (uint8 *) VARDATA(result), PG_SHA256_DIGEST_LENGTH) < 0)
#else
		pg_cryptohash_final(ctx, (uint8 *) VARDATA(result)) < 0)
#endif
		elog(ERROR, "could not compute sha256");
	pg_cryptohash_free(ctx);
	SET_VARSIZE(result, VARHDRSZ + PG_SHA256_DIGEST_LENGTH);
	return result;
}

/* Copy a key's secret (a bytea of row 0, column col) into key */
static bool
read_secret(int col, uint8 *key)
{
	bool		isnull;
	Datum		d = approval_getdatum(0, col, &isnull);
	bytea	   *b;

	if (isnull)
		return false;
	b = DatumGetByteaPP(d);
	if (VARSIZE_ANY_EXHDR(b) != TOKEN_KEY_LEN)
		return false;
	memcpy(key, VARDATA_ANY(b), TOKEN_KEY_LEN);
	return true;
}

/*
 * The sum of the rounds of a request's stages.  A resubmission starts its
 * active stages (or all of them) again in a new round, and nothing else
 * changes a round, so this grows with each resubmission: a token records it
 * at issue, and redeems only while it is the same, so that it never decides
 * a request its approver was not asked about (another payload, perhaps).
 */
static int32
request_rounds(const Req *r)
{
	int32		n = 0;

	for (int i = 0; i < r->nstages; i++)
		n += r->stages[i].round;
	return n;
}

/* ---------- refusals ---------- */

static void
refuse(const char *msg, const char *detail, const char *hint) pg_attribute_noreturn();

static void
refuse(const char *msg, const char *detail, const char *hint)
{
	ereport(ERROR,
			(errcode(ERRCODE_AP_INVALID_TOKEN),
			 errmsg("%s", msg),
			 errdetail("%s", detail),
			 errhint("%s", hint)));
}

#define HINT_NEW_TOKEN "The application can issue a new token with approval.issue_token()."

static void
refuse_invalid(const char *why) pg_attribute_noreturn();

static void
refuse_invalid(const char *why)
{
	refuse("invalid token", why,
		   "Use the token exactly as approval.issue_token() returned it.");
}

/*
 * Only a member of approval_gateway (the application that sends the links)
 * or an actor with the privileges of approval_admin handles tokens; the
 * caller's actor is returned in *caller.
 */
static void
require_gateway(ApprovalActor *caller, const char *what)
{
	Oid			outer = GetOuterUserId();
	Oid			gateway = get_role_oid(APPROVAL_GATEWAY_ROLE, true);

	approval_get_actor(caller);
	if ((OidIsValid(gateway) && is_member_of_role(outer, gateway)) || caller->is_admin)
		return;
	ereport(ERROR,
			(errcode(ERRCODE_INSUFFICIENT_PRIVILEGE),
			 errmsg("role \"%s\" may not %s", GetUserNameFromId(outer, false), what),
			 errdetail("Tokens are handled by members of %s (the application that sends them) and by %s.",
					   APPROVAL_GATEWAY_ROLE, APPROVAL_ADMIN_ROLE),
			 errhint("An approver decides with approval.approve() or approval.reject().")));
}

/* ---------- keys ---------- */

/*
 * new_token_key() → integer: a new signing key (32 random bytes) under a
 * random id, the one that signs from now on; the keys before it still
 * verify the tokens they signed.  The install script calls it; the owner
 * may call it to rotate.
 */
PG_FUNCTION_INFO_V1(approval_new_token_key);
Datum
approval_new_token_key(PG_FUNCTION_ARGS)
{
	uint8		secret[TOKEN_KEY_LEN];
	bytea	   *b = palloc(VARHDRSZ + TOKEN_KEY_LEN);
	int32		id = 0;
	Datum		args[2];
	int			tries;

	random_bytes(secret, sizeof(secret));
	SET_VARSIZE(b, VARHDRSZ + TOKEN_KEY_LEN);
	memcpy(VARDATA(b), secret, TOKEN_KEY_LEN);
	explicit_bzero(secret, sizeof(secret));

	approval_spi_connect();
	for (tries = 0; tries < 10; tries++)
	{
		uint32		r;

		random_bytes(&r, sizeof(r));
		id = (int32) r;
		args[0] = Int32GetDatum(id);
		args[1] = PointerGetDatum(b);
		if (approval_exec(&insert_key_plan, args, NULL, false, 0) == 1)
			break;
	}
	if (tries == 10)
		elog(ERROR, "could not find a free id for a token key");
	approval_spi_finish();
	explicit_bzero(VARDATA(b), TOKEN_KEY_LEN);
	PG_RETURN_INT32(id);
}

/* ---------- issue ---------- */

/*
 * issue_token(request, approver, ttl) → text: a token with which the
 * application can record approver's approval or rejection of request
 * (redeem_token), valid for ttl.  The approver must be an active principal
 * (AP012) who may vote at an active stage of the pending request now
 * (AP003, AP002); the request must be one the caller sees (AP001).
 */
PG_FUNCTION_INFO_V1(approval_issue_token);
Datum
approval_issue_token(PG_FUNCTION_ARGS)
{
	MemoryContext upper = CurrentMemoryContext;
	ApprovalActor caller;
	ApprovalActor as;
	int64		id;
	char	   *approver;
	int			alen;
	TimestampTz now = GetCurrentTimestamp();
	TimestampTz expires;
	Req		   *r;
	bool		eligible = false;
	int32		key_id;
	uint8		key[TOKEN_KEY_LEN];
	uint8		buf[TOKEN_MAX_LEN];
	uint8		tid[TOKEN_ID_LEN];
	uint8		row_id[TOKEN_ID_LEN];
	char	   *token_id;
	int			len;
	char	   *text_form;
	Datum		v[9];
	text	   *result;

	if (PG_ARGISNULL(0) || PG_ARGISNULL(1) || PG_ARGISNULL(2))
		ereport(ERROR,
				(errcode(ERRCODE_NULL_VALUE_NOT_ALLOWED),
				 errmsg("issue_token needs a request, an approver and a ttl")));
	id = PG_GETARG_INT64(0);
	approver = text_to_cstring(PG_GETARG_TEXT_PP(1));
	alen = strlen(approver);
	expires = DatumGetTimestampTz(DirectFunctionCall2(timestamptz_pl_interval,
													  TimestampTzGetDatum(now),
													  PG_GETARG_DATUM(2)));
	if (expires <= now)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a token's ttl must be greater than zero"),
				 errhint("The default is '7 days'.")));
	if (alen > TOKEN_MAX_APPROVER)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("an approver id of more than %d bytes cannot be put in a token",
						TOKEN_MAX_APPROVER)));

	approval_spi_connect();
	require_gateway(&caller, "issue tokens");
	approval_get_actor_as(&as, approver);	/* AP012 */
	r = request_open_as(id, &as);	/* AP001 when there is none */
	if (!approval_actor_sees_request(&caller, id))
		approval_not_found(id);
	if (r->state != REQUEST_PENDING)
		ereport(ERROR,
				(errcode(ERRCODE_AP_REQUEST_CLOSED),
				 errmsg("request %lld is not pending", (long long) id),
				 errdetail("Its state is %s; a token is for a decision that can be made now.",
						   request_state_names[r->state])));
	for (int i = 0; i < r->nstages && !eligible; i++)
	{
		VoteWhy		why;

		if (r->stages[i].state == STAGE_ACTIVE)
			eligible = engine_eligible_at(r, &r->stages[i], false, &why, NULL) != NULL;
	}
	if (!eligible)
		ereport(ERROR,
				(errcode(ERRCODE_AP_NOT_AN_APPROVER),
				 errmsg("%s is not an approver at an active stage of request %lld",
						approver, (long long) id),
				 errhint("approval.request_status shows whom the request is waiting on.")));

	if (approval_exec(&current_key_plan, NULL, NULL, false, 1) != 1 || !read_secret(2, key))
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("there is no key to sign tokens with"),
				 errhint("A superuser makes one with SELECT approval.new_token_key().")));
	key_id = approval_getint32(0, 1);

	random_bytes(tid, sizeof(tid));
	random_bytes(row_id, sizeof(row_id));
	buf[0] = TOKEN_VERSION;
	put_be32(buf + 1, (uint32) key_id);
	memcpy(buf + 5, tid, TOKEN_ID_LEN);
	put_be64(buf + 5 + TOKEN_ID_LEN, (uint64) id);
	put_be64(buf + 13 + TOKEN_ID_LEN, (uint64) expires);
	memcpy(buf + TOKEN_FIXED_LEN, approver, alen);
	len = TOKEN_FIXED_LEN + alen;
	token_mac(key, buf, len, buf + len);
	explicit_bzero(key, sizeof(key));
	len += TOKEN_MAC_LEN;

	text_form = palloc((len * 4 + 2) / 3 + 1);
	b64url_encode(buf, len, text_form);
	token_id = hex_text(row_id, TOKEN_ID_LEN);

	v[0] = CStringGetTextDatum(token_id);
	v[1] = PointerGetDatum(token_hash(buf, len));
	v[2] = Int32GetDatum(key_id);
	v[3] = Int64GetDatum(id);
	v[4] = CStringGetTextDatum(approver);
	v[5] = CStringGetTextDatum(caller.id);
	v[6] = TimestampTzGetDatum(now);
	v[7] = TimestampTzGetDatum(expires);
	v[8] = Int32GetDatum(request_rounds(r));
	approval_exec(&insert_token_plan, v, NULL, false, 0);
	explicit_bzero(buf, sizeof(buf));
	explicit_bzero(tid, sizeof(tid));

	result = (text *) MemoryContextAlloc(upper, VARHDRSZ + strlen(text_form));
	SET_VARSIZE(result, VARHDRSZ + strlen(text_form));
	memcpy(VARDATA(result), text_form, strlen(text_form));
	approval_spi_finish();
	PG_RETURN_TEXT_P(result);
}

/* ---------- redeem ---------- */

/* Decode a token and check its signature: AP009 "invalid" unless good */
static void
token_verify(text *t, Token *tok)
{
	int			srclen = VARSIZE_ANY_EXHDR(t);
	int			alen;
	uint8		key[TOKEN_KEY_LEN];
	uint8		mac[TOKEN_MAC_LEN];
	Datum		arg;
	bool		good;

	if (srclen > (TOKEN_MAX_LEN * 4 + 2) / 3)
		refuse_invalid("It is too long to be a token.");
	tok->len = b64url_decode(VARDATA_ANY(t), srclen, tok->bytes, TOKEN_MAX_LEN);
	if (tok->len < TOKEN_FIXED_LEN + 1 + TOKEN_MAC_LEN || tok->bytes[0] != TOKEN_VERSION)
		refuse_invalid("It is not a token of approval.issue_token().");
	alen = tok->len - TOKEN_FIXED_LEN - TOKEN_MAC_LEN;
	tok->key_id = (int32) get_be32(tok->bytes + 1);
	memcpy(tok->id, tok->bytes + 5, TOKEN_ID_LEN);
	tok->request = (int64) get_be64(tok->bytes + 5 + TOKEN_ID_LEN);
	tok->expires = (TimestampTz) get_be64(tok->bytes + 13 + TOKEN_ID_LEN);
	memcpy(tok->approver, tok->bytes + TOKEN_FIXED_LEN, alen);
	tok->approver[alen] = '\0';

	/* a key this database does not have signed nothing here */
	arg = Int32GetDatum(tok->key_id);
	if (approval_exec(&key_plan, &arg, NULL, false, 1) != 1 || !read_secret(1, key))
		refuse_invalid("Its signature does not match.");
	token_mac(key, tok->bytes, tok->len - TOKEN_MAC_LEN, mac);
	explicit_bzero(key, sizeof(key));
	good = timingsafe_bcmp(mac, tok->bytes + tok->len - TOKEN_MAC_LEN, TOKEN_MAC_LEN) == 0;
	if (!good || strlen(tok->approver) != (size_t) alen)
		refuse_invalid("Its signature does not match.");
}

static bool
principal_active(const char *id)
{
	return approval_principal_state(id) == PRINCIPAL_ACTIVE;
}

/*
 * redeem_token(token, decision, comment) → approval.request_state: record
 * the decision ("approve" or "reject") of the token's approver, once.
 */
PG_FUNCTION_INFO_V1(approval_redeem_token);
Datum
approval_redeem_token(PG_FUNCTION_ARGS)
{
	ApprovalActor caller;
	ApprovalActor as;
	Token		tok;
	const char *decision;
	bool		approve;
	const char *comment = PG_ARGISNULL(2) ? NULL : text_to_cstring(PG_GETARG_TEXT_PP(2));
	TimestampTz now = GetCurrentTimestamp();
	Datum		v[4];
	bool		isnull;
	char	   *token_id;
	int32		rounds;
	Req		   *r;

	approval_spi_connect();
	require_gateway(&caller, "redeem tokens");

	decision = PG_ARGISNULL(1) ? "" : text_to_cstring(PG_GETARG_TEXT_PP(1));
	approve = strcmp(decision, "approve") == 0;
	if (!approve && strcmp(decision, "reject") != 0)
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("a token's decision is \"approve\" or \"reject\", not \"%s\"", decision)));

	if (PG_ARGISNULL(0))
		refuse_invalid("There is no token (NULL).");
	token_verify(PG_GETARG_TEXT_PP(0), &tok);

	/* signed here: was it issued, and is it still good? */
	v[0] = PointerGetDatum(token_hash(tok.bytes, tok.len));
	explicit_bzero(tok.bytes, sizeof(tok.bytes));
	if (approval_exec(&lock_token_plan, v, NULL, false, 1) != 1)
		refuse("unknown token",
			   "It is signed by this database, but no token of that id was issued here.",
			   HINT_NEW_TOKEN);
	token_id = approval_gettext(0, 1);
	rounds = approval_getint32(0, 7);
	if (approval_getint64(0, 2) != tok.request || strcmp(approval_gettext(0, 3), tok.approver) != 0 ||
		DatumGetTimestampTz(approval_getdatum(0, 4, &isnull)) != tok.expires)
		ereport(ERROR,
				(errcode(ERRCODE_DATA_CORRUPTED),
				 errmsg("token %s does not agree with its row of approval.token", token_id)));
	(void) approval_getdatum(0, 5, &isnull);
	if (!isnull)
		refuse("token already used",
			   psprintf("It was redeemed at %s.",
						timestamptz_to_str(DatumGetTimestampTz(approval_getdatum(0, 5, &isnull)))),
			   "A token records one decision; approval.request_status shows where the request stands.");
	(void) approval_getdatum(0, 6, &isnull);
	if (!isnull)
		refuse("token revoked",
			   psprintf("It was revoked at %s: revoke_tokens(%lld), or its approver %s was made inactive, renamed or removed.",
						timestamptz_to_str(DatumGetTimestampTz(approval_getdatum(0, 6, &isnull))),
						(long long) tok.request, tok.approver),
			   HINT_NEW_TOKEN);
	if (now >= tok.expires)
		refuse("token expired",
			   psprintf("It expired at %s.", timestamptz_to_str(tok.expires)),
			   HINT_NEW_TOKEN);
	if (!principal_active(tok.approver))
		refuse("the token's approver is no longer eligible",
			   psprintf("%s is no longer an active principal.", tok.approver),
			   "Another approver of the request must decide.");

	/* the vote, as the token's approver's */
	approval_get_actor_as(&as, tok.approver);
	r = request_open_as(tok.request, &as);
	if (request_rounds(r) != rounds)
		refuse("the token's request was resubmitted",
			   psprintf("Request %lld was resubmitted after the token was issued; its approver was not asked about it as it is now.",
						(long long) r->id),
			   HINT_NEW_TOKEN);
	r->token = token_id;
	switch (decide_vote(r, approve, NULL, comment, true))
	{
		case DECIDE_DONE:
			break;
		case DECIDE_CLOSED:
			refuse("the token's request is closed",
				   r->state == REQUEST_CHANGES_REQUESTED ?
				   psprintf("Changes to request %lld were requested.", (long long) r->id) :
				   psprintf("Request %lld is %s.", (long long) r->id, request_state_names[r->state]),
				   "Nothing can be decided on it now.");
		case DECIDE_INELIGIBLE:
			refuse("the token's approver is no longer eligible",
				   psprintf("%s is not an approver at an active stage of request %lld any more (the stage moved on, or they are no longer among its approvers).",
							tok.approver, (long long) r->id),
				   "approval.request_status shows whom the request is waiting on.");
	}

	v[0] = CStringGetTextDatum(token_id);
	v[1] = TimestampTzGetDatum(now);
	v[2] = CStringGetTextDatum(caller.id);
	v[3] = CStringGetTextDatum(decision);
	approval_exec(&use_token_plan, v, NULL, false, 0);
	PG_RETURN_DATUM(request_done(r));
}
