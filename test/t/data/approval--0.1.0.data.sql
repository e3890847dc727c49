--
-- Data of approval 0.1.0 as release 0.1.0 made it (test/t/data/roles.sql
-- and requests.sql, on its own library): written by
--   tools/freeze-upgrade-data.sh 0.1.0 c34b1c9
-- Load after CREATE EXTENSION approval VERSION '0.1.0' and roles.sql
-- (test/t/ApprovalFixture.pm, load_frozen).  Do not edit.
--
--
-- PostgreSQL database dump
--


-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

--
-- Data for Name: approver_group; Type: TABLE DATA; Schema: approval; Owner: postgres
--

COPY approval.approver_group (name, description, pg_role) FROM stdin;
finance	Finance	\N
\.


--
-- Data for Name: decision; Type: TABLE DATA; Schema: approval; Owner: postgres
--

COPY approval.decision (id, request_id, stage, actor, on_behalf_of, decision, reason, comment, denial_message, round, at) FROM stdin;
1	2	manager	bob	\N	approve	\N	fine by me	\N	1	2026-12-01 22:06:33.88949+00
2	3	manager	bob	\N	request_changes	\N	which project?	\N	1	2026-12-01 22:06:33.913064+00
3	4	manager	bob	\N	request_changes	\N	receipt missing	\N	1	2026-12-01 22:06:33.915816+00
4	5	manager	bob	\N	approve	\N	\N	\N	1	2026-12-01 22:06:33.916699+00
5	6	manager	bob	\N	reject	over_budget	too much	\N	1	2026-12-01 22:06:33.917607+00
6	2	\N	alice	\N	comment	\N	needed this week	\N	1	2026-12-01 22:06:33.923768+00
7	5	finance	dave	carol	approve	\N	for carol	\N	1	2026-12-01 22:06:33.92693+00
\.


--
-- Data for Name: delegation; Type: TABLE DATA; Schema: approval; Owner: postgres
--

COPY approval.delegation (id, delegator, delegate, starts, ends, workflow, created_at, revoked_at) FROM stdin;
1	carol	dave	2026-12-01 22:06:33.863741+00	\N	expense	2026-12-01 22:06:33.863741+00	\N
2	carol	erin	2026-12-01 22:06:33.869341+00	\N	\N	2026-12-01 22:06:33.869341+00	2026-12-01 22:06:33.869341+00
\.


--
-- Data for Name: event; Type: TABLE DATA; Schema: approval; Owner: postgres
--

COPY approval.event (seq, request_id, at, kind, actor, data, hash) FROM stdin;
1	1	2026-12-01 22:06:33.845161+00	submitted	alice	{"title": "pending-v1", "subject": null, "version": 1, "workflow": "expense"}	\\xcc4110fc411bf63e6990cd5094af2267f0325fec9af73bd5fd04f834eccec91e
2	1	2026-12-01 22:06:33.845161+00	stage_activated	alice	{"order": 0, "round": 1, "stage": "manager", "targets": ["user:bob"], "required": 1}	\\x0fb7ce48eff7bbd8dc182aca703dc53ea91db58c51e3347dbc38427534307305
3	2	2026-12-01 22:06:33.878031+00	submitted	alice	{"title": "pending-voted", "subject": null, "version": 2, "workflow": "expense"}	\\x4c55faaa12e1b9311db5b1a99f4330f7c0567c950bab6d171b582bb89593ab25
4	2	2026-12-01 22:06:33.878031+00	stage_activated	alice	{"order": 0, "round": 1, "stage": "manager", "targets": ["user:bob"], "required": 1}	\\xcf114bd1cc10eb412bdeadd2abfbf2b28d60f908035c9a847be6909a1dc95479
5	3	2026-12-01 22:06:33.880104+00	submitted	alice	{"title": "resubmitted", "subject": null, "version": 2, "workflow": "expense"}	\\x922a8df1d24a640b401cdb80e114295b567c52b39c5f7dcb84fbef4f3cc0a9da
6	3	2026-12-01 22:06:33.880104+00	stage_activated	alice	{"order": 0, "round": 1, "stage": "manager", "targets": ["user:bob"], "required": 1}	\\x0e4bc973c504fd5e48ef00e488708ddc60c0673f49d0e02ae31acb2db0339c3e
7	4	2026-12-01 22:06:33.880899+00	submitted	alice	{"title": "changes", "subject": null, "version": 2, "workflow": "expense"}	\\xa8e0ee524a9872e69afad235d54a512ef4339e6963231f87580f8a47c2f3f1c3
8	4	2026-12-01 22:06:33.880899+00	stage_activated	alice	{"order": 0, "round": 1, "stage": "manager", "targets": ["user:bob"], "required": 1}	\\x24a1c0b825cbb7cfa672875ab0b0f33fb133d3121cdaa16e52c3b8b640de9264
9	5	2026-12-01 22:06:33.881341+00	submitted	alice	{"title": "approved", "subject": null, "version": 2, "workflow": "expense"}	\\xe957b6f452da2d9e2122af0f3ab5b64f8adb7ed622495b1e8a437262ea4fd51d
10	5	2026-12-01 22:06:33.881341+00	stage_activated	alice	{"order": 0, "round": 1, "stage": "manager", "targets": ["user:bob"], "required": 1}	\\xba03ccf404e4858a7cbe72a47c14dbc8d9ac31a9d55726daa6b52d9114251df2
11	6	2026-12-01 22:06:33.882143+00	submitted	alice	{"title": "rejected", "subject": null, "version": 2, "workflow": "expense"}	\\x9f7c7ea2a39385052e2dc1a02155c16a52e19626a80312e58df6e9d47e501371
12	6	2026-12-01 22:06:33.882143+00	stage_activated	alice	{"order": 0, "round": 1, "stage": "manager", "targets": ["user:bob"], "required": 1}	\\x6538629c338ecbdfbba75ac37267b4bf57a3c3dc381d2f42f9bc56244641828f
13	7	2026-12-01 22:06:33.883182+00	submitted	alice	{"title": "cancelled", "subject": null, "version": 2, "workflow": "expense"}	\\x183814f373c67c3671f515fe1f44d53d1f81b33bdd0a124eccd54b6e71298e6c
14	7	2026-12-01 22:06:33.883182+00	stage_activated	alice	{"order": 0, "round": 1, "stage": "manager", "targets": ["user:bob"], "required": 1}	\\x77240c44d1af8785cd6ad7c875d7b7ae5abc7b5ea518fd19771ae0f7f06f9096
15	2	2026-12-01 22:06:33.88949+00	voted	bob	{"stage": "manager", "reason": null, "decision": "approve", "required": 1, "approvals": 1, "rejections": 0, "on_behalf_of": null}	\\xe6fb992be6a05203bc602af11bd5541516eab235fec25ba92eeaeee047d9c9e9
16	2	2026-12-01 22:06:33.88949+00	quorum_satisfied	bob	{"stage": "manager", "required": 1, "approvals": 1}	\\x67dd165833058f8a419f6af9f51dfa917b8256c01e314a2c7ee251dd89403a5a
17	2	2026-12-01 22:06:33.88949+00	stage_approved	bob	{"order": 0, "stage": "manager"}	\\xbf8f35085a2b35234632cd6303f53244fd7931bb365a1d3ef963bdaf72dd358c
18	2	2026-12-01 22:06:33.88949+00	stage_activated	bob	{"order": 1, "round": 1, "stage": "finance", "targets": ["group:finance"], "required": 1}	\\xe0cce5febd1a6d1fd79e9a7ffa1ae380cec9eb4a13da5701265d6724c6231121
19	3	2026-12-01 22:06:33.913064+00	changes_requested	bob	{"stage": "manager", "comment": "which project?"}	\\xb12dea0fba037688011523e0c276e5f9d0c2aec3c44a9c42a38417703d529dc8
20	4	2026-12-01 22:06:33.915816+00	changes_requested	bob	{"stage": "manager", "comment": "receipt missing"}	\\x3c236c61002d3ab31403e0eca2f3cbf36da3a8b57d0b7548958ce18759133821
21	5	2026-12-01 22:06:33.916699+00	voted	bob	{"stage": "manager", "reason": null, "decision": "approve", "required": 1, "approvals": 1, "rejections": 0, "on_behalf_of": null}	\\x042b96d6a8deaabfae968a6c35b44eb9a1b0ad5408652dc68a07d51b624dc1cd
22	5	2026-12-01 22:06:33.916699+00	quorum_satisfied	bob	{"stage": "manager", "required": 1, "approvals": 1}	\\x9fca6760afc7a9e5bd54b8ab455329e92a90cb4e3023d888d154b31639c823ed
23	5	2026-12-01 22:06:33.916699+00	stage_approved	bob	{"order": 0, "stage": "manager"}	\\x4a66fd571be54040ef63d7cc3014d54706f49a7793ffabadddce1f66ab407511
24	5	2026-12-01 22:06:33.916699+00	stage_activated	bob	{"order": 1, "round": 1, "stage": "finance", "targets": ["group:finance"], "required": 1}	\\x80392419cf793667e5c3db18591dd9c88dba89599702af85a08c80865e903bfb
25	6	2026-12-01 22:06:33.917607+00	voted	bob	{"stage": "manager", "reason": "over_budget", "decision": "reject", "required": 1, "approvals": 0, "rejections": 1, "on_behalf_of": null}	\\x76b55e31f94290fee10908d1d913c32abdf34ab3a9b9e2d1decc23754d163806
26	6	2026-12-01 22:06:33.917607+00	stage_rejected	bob	{"stage": "manager", "reason": "over_budget", "denial_message": null}	\\x5a4956c23507cdedf8f843ba9e1a81f693b789dd1ae0c2b072e6bb6d55f75166
27	6	2026-12-01 22:06:33.917607+00	rejected	bob	{"reason": "over_budget", "denial_message": null}	\\xbde5c17d8d77b974eb426bd9d46e634288ba5599b57799e56afe8e4abaa5ba29
28	2	2026-12-01 22:06:33.923768+00	commented	alice	{"comment": "needed this week"}	\\xd29354f75e31f3104ac0d3ad4ed831f1fee7b2fef8a323ee564fabd039b58bdd
29	3	2026-12-01 22:06:33.925141+00	resubmitted	alice	{"comment": "project x", "reapprove": "stage", "payload_changed": true}	\\x4ac64743077f7f91c8ed236359fe524a06e23bbffec5eab9617ac32528614565
30	3	2026-12-01 22:06:33.925141+00	stage_activated	alice	{"order": 0, "round": 2, "stage": "manager", "targets": ["user:bob"], "required": 1}	\\xbe4fcb2f4df311bc4e6a5ad3085ac997fd329fa213a4edc55c1ef2f3dca9c81e
31	7	2026-12-01 22:06:33.92611+00	cancelled	alice	{"comment": "not needed"}	\\xcbf9626342987a44b50ebb7899443198e7efa6219afef415a27f2e4b5c1c383e
32	5	2026-12-01 22:06:33.92693+00	voted	dave	{"stage": "finance", "reason": null, "decision": "approve", "required": 1, "approvals": 1, "rejections": 0, "on_behalf_of": "carol"}	\\xf2723657aee82144f1af25f620e320c36289a78b23527b25f1017c10f33caf90
33	5	2026-12-01 22:06:33.92693+00	quorum_satisfied	dave	{"stage": "finance", "required": 1, "approvals": 1}	\\x426a46edf6acf9e7d38f067cd104e60793613cad524cb27bbeb5f44b27bf2d6d
34	5	2026-12-01 22:06:33.92693+00	stage_approved	dave	{"order": 1, "stage": "finance"}	\\xce71e1954a978249a994d62901c0962ef7759929dfcffc7a3a6ed7f13e667206
35	5	2026-12-01 22:06:33.92693+00	approved	dave	{}	\\x85c5458af13ccdfaf832a54fe408972f5264a1574300588a4e0a2702a99b96a4
\.


--
-- Data for Name: principal; Type: TABLE DATA; Schema: approval; Owner: postgres
--

COPY approval.principal (id, display_name, email, manager_id, attributes, pg_role, active) FROM stdin;
bob	Bob	\N	\N	{}	fx_bob	t
alice	Alice	\N	bob	{}	fx_alice	t
carol	Carol	\N	\N	{}	fx_carol	t
dave	Dave	\N	\N	{}	fx_dave	t
erin	Erin	\N	bob	{}	fx_erin	t
\.


--
-- Data for Name: group_member; Type: TABLE DATA; Schema: approval; Owner: postgres
--

COPY approval.group_member (group_name, principal_id) FROM stdin;
finance	carol
\.


--
-- Data for Name: request; Type: TABLE DATA; Schema: approval; Owner: postgres
--

COPY approval.request (id, workflow_id, workflow, title, subject, payload, requester, state, created_at, decided_at, due_at, sla_state, escalations, current_order, updated_at, last_hash) FROM stdin;
1	1	expense	pending-v1	\N	{"amount": 5}	alice	pending	2026-12-01 22:06:33.845161+00	\N	\N	\N	0	0	2026-12-01 22:06:33.845161+00	\\x0fb7ce48eff7bbd8dc182aca703dc53ea91db58c51e3347dbc38427534307305
4	2	expense	changes	\N	{"amount": 30}	alice	changes_requested	2026-12-01 22:06:33.880899+00	\N	\N	\N	0	0	2026-12-01 22:06:33.915816+00	\\x3c236c61002d3ab31403e0eca2f3cbf36da3a8b57d0b7548958ce18759133821
6	2	expense	rejected	\N	{"amount": 50}	alice	rejected	2026-12-01 22:06:33.882143+00	2026-12-01 22:06:33.917607+00	\N	\N	0	0	2026-12-01 22:06:33.917607+00	\\xbde5c17d8d77b974eb426bd9d46e634288ba5599b57799e56afe8e4abaa5ba29
2	2	expense	pending-voted	\N	{"amount": 10}	alice	pending	2026-12-01 22:06:33.878031+00	\N	\N	\N	0	1	2026-12-01 22:06:33.923768+00	\\xd29354f75e31f3104ac0d3ad4ed831f1fee7b2fef8a323ee564fabd039b58bdd
3	2	expense	resubmitted	\N	{"amount": 21, "project": "x"}	alice	pending	2026-12-01 22:06:33.880104+00	\N	\N	\N	0	0	2026-12-01 22:06:33.925141+00	\\xbe4fcb2f4df311bc4e6a5ad3085ac997fd329fa213a4edc55c1ef2f3dca9c81e
7	2	expense	cancelled	\N	{"amount": 60}	alice	cancelled	2026-12-01 22:06:33.883182+00	2026-12-01 22:06:33.92611+00	\N	\N	0	0	2026-12-01 22:06:33.92611+00	\\xcbf9626342987a44b50ebb7899443198e7efa6219afef415a27f2e4b5c1c383e
5	2	expense	approved	\N	{"amount": 40}	alice	approved	2026-12-01 22:06:33.881341+00	2026-12-01 22:06:33.92693+00	\N	\N	0	1	2026-12-01 22:06:33.92693+00	\\x85c5458af13ccdfaf832a54fe408972f5264a1574300588a4e0a2702a99b96a4
\.


--
-- Data for Name: request_stage; Type: TABLE DATA; Schema: approval; Owner: postgres
--

COPY approval.request_stage (request_id, stage, stage_idx, stage_order, state, targets, required, approvals, rejections, reject_required, round, activated_at, decided_at) FROM stdin;
1	manager	0	0	active	{user:bob}	1	0	0	1	1	2026-12-01 22:06:33.845161+00	\N
3	finance	1	1	waiting	{group:finance}	1	0	0	1	1	\N	\N
4	manager	0	0	active	{user:bob}	1	0	0	1	1	2026-12-01 22:06:33.880899+00	\N
4	finance	1	1	waiting	{group:finance}	1	0	0	1	1	\N	\N
6	finance	1	1	waiting	{group:finance}	1	0	0	1	1	\N	\N
7	manager	0	0	active	{user:bob}	1	0	0	1	1	2026-12-01 22:06:33.883182+00	\N
7	finance	1	1	waiting	{group:finance}	1	0	0	1	1	\N	\N
2	manager	0	0	approved	{user:bob}	1	1	0	1	1	2026-12-01 22:06:33.878031+00	2026-12-01 22:06:33.88949+00
2	finance	1	1	active	{group:finance}	1	0	0	1	1	2026-12-01 22:06:33.88949+00	\N
5	manager	0	0	approved	{user:bob}	1	1	0	1	1	2026-12-01 22:06:33.881341+00	2026-12-01 22:06:33.916699+00
6	manager	0	0	rejected	{user:bob}	1	0	1	1	1	2026-12-01 22:06:33.882143+00	2026-12-01 22:06:33.917607+00
3	manager	0	0	active	{user:bob}	1	0	0	1	2	2026-12-01 22:06:33.925141+00	\N
5	finance	1	1	approved	{group:finance}	1	1	0	1	1	2026-12-01 22:06:33.916699+00	2026-12-01 22:06:33.92693+00
\.


--
-- Data for Name: subscriber; Type: TABLE DATA; Schema: approval; Owner: postgres
--

COPY approval.subscriber (name, last_seq) FROM stdin;
fx-listener	32
\.


--
-- Data for Name: workflow; Type: TABLE DATA; Schema: approval; Owner: postgres
--

COPY approval.workflow (id, name, version, description, priority, match, auto_approve, require_ack, allow_self_approval, distinct_approvers, reapprove_on_change, sla, sla_warning, calendar, escalate_after, escalate_every, escalate_to, expires_after, on_approved, on_rejected, definition, enabled, created_at, created_by) FROM stdin;
1	expense	1	\N	100	\N	\N	\N	f	f	stage	\N	\N	\N	\N	\N	\N	\N	\N	\N	{"name": "expense", "stages": [{"name": "manager", "approvers": ["manager"]}]}	t	2026-12-01 22:06:33.84182+00	10
2	expense	2	version 2	100	\N	\N	\N	f	f	stage	\N	\N	\N	\N	\N	\N	\N	\N	\N	{"name": "expense", "stages": [{"name": "manager", "approvers": ["manager"]}, {"name": "finance", "approvers": ["group:finance"]}], "description": "version 2"}	t	2026-12-01 22:06:33.859819+00	10
\.


--
-- Data for Name: workflow_stage; Type: TABLE DATA; Schema: approval; Owner: postgres
--

COPY approval.workflow_stage (workflow_id, idx, name, stage_order, approvers, min_approvals, reject_policy, reject_quorum, when_cond, denial_message, timeout, on_timeout) FROM stdin;
1	0	manager	0	{manager}	1	any	1	\N	\N	\N	\N
2	0	manager	0	{manager}	1	any	1	\N	\N	\N	\N
2	1	finance	1	{group:finance}	1	any	1	\N	\N	\N	\N
\.


--
-- Name: event_seq; Type: SEQUENCE SET; Schema: approval; Owner: postgres
--

SELECT pg_catalog.setval('approval.event_seq', 35, true);


--
-- Name: request_id_seq; Type: SEQUENCE SET; Schema: approval; Owner: postgres
--

SELECT pg_catalog.setval('approval.request_id_seq', 7, true);


--
-- PostgreSQL database dump complete
--


SELECT pg_catalog.setval('approval.decision_id_seq', 7, true);
SELECT pg_catalog.setval('approval.delegation_id_seq', 2, true);
SELECT pg_catalog.setval('approval.event_seq', 35, true);
SELECT pg_catalog.setval('approval.request_id_seq', 7, true);
SELECT pg_catalog.setval('approval.workflow_id_seq', 2, true);
