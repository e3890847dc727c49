/*-------------------------------------------------------------------------
 *
 * graph.c
 *	  approval.graph(): a picture of a workflow's stages, as a Mermaid
 *	  flowchart or a Graphviz digraph.
 *
 *-------------------------------------------------------------------------
 */
#include "approval.h"

#include "utils/builtins.h"
#include "utils/jsonpath.h"
#include "utils/varlena.h"

/* ---------- pictures ---------- */

static void
append_escaped(StringInfo buf, const char *s, bool dot)
{
	for (; *s; s++)
	{
		if (*s == '"')
			appendStringInfoString(buf, dot ? "\\\"" : "#quot;");
		else if (*s == '\\' && dot)
			appendStringInfoString(buf, "\\\\");
		else
			appendStringInfoChar(buf, *s);
	}
}

static void
append_stage_label(StringInfo buf, StageDef *st, bool dot)
{
	const char *nl = dot ? "\\n" : "<br/>";
	ListCell   *lc;

	append_escaped(buf, st->name, dot);
	appendStringInfoString(buf, nl);
	foreach(lc, st->approvers)
	{
		if (lc != list_head(st->approvers))
			appendStringInfoString(buf, ", ");
		append_escaped(buf, lfirst(lc), dot);
	}
	appendStringInfoString(buf, nl);
	if (st->min_approvals == 0)
		appendStringInfoString(buf, "all must approve");
	else
		appendStringInfo(buf, "%d approval%s", st->min_approvals, st->min_approvals == 1 ? "" : "s");
	if (st->when != NULL)
	{
		appendStringInfoString(buf, nl);
		appendStringInfoString(buf, "when ");
		append_escaped(buf, DatumGetCString(DirectFunctionCall1(jsonpath_out,
																PointerGetDatum(st->when))), dot);
	}
}

static int
cmp_int(const void *a, const void *b)
{
	int			x = *(const int *) a;
	int			y = *(const int *) b;

	return (x > y) - (x < y);
}

PG_FUNCTION_INFO_V1(approval_graph);
Datum
approval_graph(PG_FUNCTION_ARGS)
{
	char	   *name = text_to_cstring(PG_GETARG_TEXT_PP(0));
	char	   *format = text_to_cstring(PG_GETARG_TEXT_PP(1));
	bool		dot;
	int32		id;
	bool		enabled;
	WorkflowDef *wf;
	StringInfoData buf;
	int		   *orders;
	int			norders = 0;
	const char *arrow;
	text	   *result;

	if (pg_strcasecmp(format, "mermaid") == 0)
		dot = false;
	else if (pg_strcasecmp(format, "dot") == 0)
		dot = true;
	else
		ereport(ERROR,
				(errcode(ERRCODE_INVALID_PARAMETER_VALUE),
				 errmsg("unknown graph format \"%s\"", format),
				 errhint("Use 'mermaid' or 'dot'.")));

	approval_spi_connect();
	id = approval_latest_version(name, &enabled);
	if (id == 0)
		ereport(ERROR,
				(errcode(ERRCODE_AP_NO_WORKFLOW_MATCHES),
				 errmsg("workflow \"%s\" does not exist", name),
				 errhint("SELECT name FROM approval.workflows lists the workflows.")));
	wf = approval_workflow_get(id);

	/* the distinct orders, ascending */
	orders = palloc(sizeof(int) * Max(wf->nstages, 1));
	for (int i = 0; i < wf->nstages; i++)
	{
		bool		seen = false;

		for (int j = 0; j < norders; j++)
			seen |= (orders[j] == wf->stages[i].order);
		if (!seen)
			orders[norders++] = wf->stages[i].order;
	}
	qsort(orders, norders, sizeof(int), cmp_int);

	initStringInfo(&buf);
	arrow = dot ? " -> " : " --> ";
	if (dot)
	{
		appendStringInfoString(&buf, "digraph \"");
		append_escaped(&buf, wf->name, true);
		appendStringInfoString(&buf, "\" {\n    rankdir=LR;\n    node [shape=box];\n");
		appendStringInfoString(&buf, "    submitted [shape=oval];\n    approved [shape=oval];\n");
	}
	else
		appendStringInfoString(&buf, "flowchart LR\n    submitted([submitted])\n    approved([approved])\n");

	for (int i = 0; i < wf->nstages; i++)
	{
		appendStringInfo(&buf, dot ? "    s%d [label=\"" : "    s%d[\"", i);
		append_stage_label(&buf, &wf->stages[i], dot);
		appendStringInfoString(&buf, dot ? "\"];\n" : "\"]\n");
	}

	/* edges: everything of one order leads to everything of the next */
	for (int o = 0; o <= norders; o++)
	{
		for (int i = 0; i < wf->nstages || (i == 0 && wf->nstages == 0); i++)
		{
			bool		from_start = (o == 0);
			char		from[32];

			if (!from_start && wf->stages[i].order != orders[o - 1])
				continue;
			if (from_start)
			{
				if (i > 0)
					break;
				strcpy(from, "submitted");
			}
			else
				snprintf(from, sizeof(from), "s%d", i);

			if (o == norders)
				appendStringInfo(&buf, "    %s%sapproved%s\n", from, arrow, dot ? ";" : "");
			else
				for (int j = 0; j < wf->nstages; j++)
					if (wf->stages[j].order == orders[o])
						appendStringInfo(&buf, "    %s%ss%d%s\n", from, arrow, j, dot ? ";" : "");
		}
	}
	if (dot)
		appendStringInfoString(&buf, "}\n");

	result = (text *) SPI_palloc(VARHDRSZ + buf.len);
	SET_VARSIZE(result, VARHDRSZ + buf.len);
	memcpy(VARDATA(result), buf.data, buf.len);
	approval_spi_finish();
	PG_RETURN_TEXT_P(result);
}

