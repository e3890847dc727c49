/*-------------------------------------------------------------------------
 *
 * claims.c
 *	  The actor behind PostgREST and Supabase: a claim of the verified JWT.
 *
 * PostgREST connects as one login role (the "authenticator"), switches to a
 * NOLOGIN role per HTTP request with SET LOCAL ROLE, and passes the JWT it
 * has verified as the setting request.jwt.claims, a JSON object.  With
 * approval.actor_claim naming a claim (e.g. "sub"), a session whose
 * *session* user is a member of approval_gateway acts for the principal that
 * claim names (DESIGN §2).  The session user is what counts, not the
 * current one: anyone can set request.jwt.claims, but only a gateway's
 * connection can have been given them by PostgREST.
 *
 *-------------------------------------------------------------------------
 */
#include "approval.h"

#include "common/jsonapi.h"
#include "mb/pg_wchar.h"
#include "miscadmin.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/jsonb.h"

static void bad_claims(const char *detail) pg_attribute_noreturn();

static void
bad_claims(const char *detail)
{
	ereport(ERROR,
			(errcode(ERRCODE_AP_ACTOR_NOT_ALLOWED),
			 errmsg("request.jwt.claims does not name an actor"),
			 errdetail("%s", detail),
			 errhint("approval.actor_claim is \"%s\": the verified JWT must carry that claim as a string.",
					 approval_actor_claim)));
}

/* Whether "json" is well-formed JSON, without raising an error */
static bool
json_is_valid(char *json)
{
	JsonLexContext *lex;

#if PG_VERSION_NUM >= 170000
	lex = makeJsonLexContextCstringLen(NULL, json, strlen(json), GetDatabaseEncoding(), true);
#else
	lex = makeJsonLexContextCstringLen(json, strlen(json), GetDatabaseEncoding(), true);
#endif
	return pg_parse_json(lex, &nullSemAction) == JSON_SUCCESS;
}

/*
 * The principal id that request.jwt.claims names, or NULL when this session
 * does not act through claims: approval.actor_claim is empty, the session
 * user is no member of the gateway role, or there are no claims.  Claims
 * that are not a JSON object, or lack the claim, are AP010.
 */
char *
approval_claimed_actor(Oid gateway)
{
	const char *raw;
	Jsonb	   *claims;
	JsonbValue	key;
	JsonbValue *v;

	if (approval_actor_claim == NULL || approval_actor_claim[0] == '\0')
		return NULL;
	if (!OidIsValid(gateway) || !is_member_of_role(GetSessionUserId(), gateway))
		return NULL;
	raw = GetConfigOption("request.jwt.claims", true, false);
	if (raw == NULL || raw[0] == '\0')
		return NULL;

	if (!json_is_valid(pstrdup(raw)))
		bad_claims("request.jwt.claims is not valid JSON.");
	claims = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum(raw)));
	if (!JB_ROOT_IS_OBJECT(claims) || JB_ROOT_IS_SCALAR(claims))
		bad_claims("request.jwt.claims is not a JSON object.");

	key.type = jbvString;
	key.val.string.val = approval_actor_claim;
	key.val.string.len = strlen(approval_actor_claim);
	v = findJsonbValueFromContainer(&claims->root, JB_FOBJECT, &key);
	if (v == NULL)
		bad_claims(psprintf("The claims have no \"%s\".", approval_actor_claim));
	if (v->type == jbvString && v->val.string.len > 0)
		return pnstrdup(v->val.string.val, v->val.string.len);
	if (v->type == jbvNumeric)
		return DatumGetCString(DirectFunctionCall1(numeric_out,
												   NumericGetDatum(v->val.numeric)));
	bad_claims(psprintf("The claim \"%s\" is not a non-empty string.", approval_actor_claim));
}
