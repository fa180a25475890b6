"""The one registry of where customer data lives, and what happens to it.

Every table in ``Base.metadata`` declares here, once, how it holds a person's data and how
that data is handled on merge and undo, on data-subject export, on erasure and by the
retention job. ``tests/privacy/test_registry.py`` fails when a table is missing (its
message prints the line to add), when a declaration names a column that does not exist,
and when the merge declaration disagrees with what
:func:`siyu.customers.identity.merge_customers` really moves.

How to declare a new table (add one call below, in its domain's block):

* rows that name a customer through a column referencing ``customers.id``::

      declare("surveys_answers", link=("customer_id",))

  merged and undone with the customer (``merge="move"``, found automatically by the merge
  code), exported, deleted on erasure.
* rows that belong to a row of another declared table (a message to its conversation)::

      declare("messages", via=("conversation_id", "conversations"))
* a table with no personal data (configuration, staff, models)::

      declare("kb_faq", holds_personal_data=False)
* data kept anonymised for accounting instead of deleted: ``erase="anonymise"`` and a
  handler in :mod:`siyu.privacy.erasure` (``ANONYMISERS``).
* a table the retention job purges: ``retention=("retention_events_days", "ts")``, the
  setting that holds the days and the timestamp column; rows about a purged row go with it
  when declared ``via`` it or ``purged_with=("message_id", "messages")``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Merge = Literal["move", "follows", "recompute", "tombstone", "record", "none"]
Erase = Literal["delete", "anonymise", "custom", "none"]

MERGE_MEANING: dict[str, str] = {
    "move": "rows move to the kept customer; undo moves them back (recorded in the merge)",
    "follows": "rows follow their parent row, which moves",
    "recompute": "not moved: derived rows, recomputed or refreshed from the moved data",
    "tombstone": "the merged-away row stays, marked merged, pointing at the kept customer",
    "record": "the merge's own bookkeeping: not moved",
    "none": "holds no customer data",
}
ERASE_MEANING: dict[str, str] = {
    "delete": "the person's rows are deleted",
    "anonymise": "rows stay for accounting with every personal field cleared",
    "custom": "a table-specific eraser finds and deletes the person's rows",
    "none": "holds no personal data",
}


@dataclass(frozen=True)
class Holding:
    """How one table holds customer data."""

    table: str
    # Columns whose value is a customer id (they reference customers.id).
    link: tuple[str, ...] = ()
    # (column, parent table): the row belongs to whoever the parent row belongs to.
    via: tuple[str, str] | None = None
    merge: Merge = "move"
    export: bool = True
    erase: Erase = "delete"
    # (settings field holding the days to keep, timestamp column); None: kept.
    retention: tuple[str, str] | None = None
    # (column, table): also deleted when the retention job purges the row it names.
    purged_with: tuple[str, str] | None = None
    note: str = ""

    @property
    def holds_personal_data(self) -> bool:
        return self.erase != "none"


REGISTRY: dict[str, Holding] = {}


def declare(
    table: str,
    *,
    link: tuple[str, ...] = (),
    via: tuple[str, str] | None = None,
    merge: Merge | None = None,
    export: bool | None = None,
    erase: Erase | None = None,
    retention: tuple[str, str] | None = None,
    purged_with: tuple[str, str] | None = None,
    holds_personal_data: bool = True,
    note: str = "",
) -> Holding:
    """Declare how ``table`` holds customer data (see the module docstring)."""
    if table in REGISTRY:
        raise ValueError(f"table {table!r} is declared twice in the privacy registry")
    if holds_personal_data and not link and via is None and erase in (None, "delete"):
        raise ValueError(f"table {table!r}: say how its rows name a customer (link= or via=), "
                         "or pass holds_personal_data=False")
    if not holds_personal_data:
        default_merge: Merge = "none"
        default_erase: Erase = "none"
    else:
        default_merge = "move" if link else "follows" if via is not None else "none"
        default_erase = "delete"
    holding = Holding(
        table=table, link=link, via=via, merge=merge or default_merge,
        export=holds_personal_data if export is None else export,
        erase=erase or default_erase, retention=retention, purged_with=purged_with, note=note)
    REGISTRY[table] = holding
    return holding


def holdings() -> list[Holding]:
    return list(REGISTRY.values())


# -- customers ---------------------------------------------------------------------------------
declare("customers", link=("id",), merge="tombstone", erase="anonymise",
        note="the row stays as an anonymous tombstone (status erased) so that orders keep "
             "counting in revenue; name, birthday, city, attributes and advisor are cleared")
declare("identities", link=("customer_id",),
        note="deleted; a keyed hash of each value goes to privacy_suppressions first")
declare("tags", holds_personal_data=False, note="the brand's tag names")
declare("customer_tags", link=("customer_id",))
declare("consents", link=("customer_id",),
        note="deleted; do-not-contact is then kept by privacy_suppressions")
declare("referrals", link=("referrer_id", "referred_id"))
declare("customer_merges", link=("kept_id", "merged_id"), merge="record",
        note="merge records of the person; reasons name identity kinds, never values")
declare("merge_conflicts", link=("customer_a_id", "customer_b_id"), merge="record",
        note="hold both sides' identity values")

# -- orders and events -------------------------------------------------------------------------
declare("orders", link=("customer_id",), erase="anonymise",
        note="kept for accounting: amount, currency, time, status and channel stay, linked "
             "to the anonymous tombstone; item lines keep only product keys")
declare("events", link=("customer_id",), retention=("retention_events_days", "ts"))

# -- analytics ---------------------------------------------------------------------------------
declare("customer_scores", link=("customer_id",), merge="recompute",
        note="recomputed from the moved orders and events after a merge")
declare("stage_transitions", link=("customer_id",))
declare("clv_models", holds_personal_data=False, note="model parameters over all customers")

# -- segments ----------------------------------------------------------------------------------
declare("segments", holds_personal_data=False)
declare("segment_members", link=("customer_id",), merge="recompute",
        note="the next refresh re-evaluates the kept customer")
declare("segment_changes", link=("customer_id",), merge="recompute")
declare("segment_snapshots", holds_personal_data=False, note="sizes only")

# -- service desk ------------------------------------------------------------------------------
declare("conversations", link=("customer_id",))
declare("messages", via=("conversation_id", "conversations"),
        retention=("retention_messages_days", "created_at"),
        note="message texts and payloads (the outbox's content)")
declare("bot_decisions", via=("conversation_id", "conversations"),
        purged_with=("message_id", "messages"),
        note="the bot's reasons may quote the customer")
declare("conversation_events", via=("conversation_id", "conversations"))
declare("csat_answers", via=("conversation_id", "conversations"))
declare("agents", holds_personal_data=False, note="staff")

# -- channels ----------------------------------------------------------------------------------
declare("channel_deliveries", link=("customer_id",), via=("message_id", "messages"),
        note="the outbox: content of each outbound message, delivery state; provider "
             "errors may name the recipient")
declare("channel_verification_codes", erase="custom", export=False,
        note="web chat phone verification: rows with the person's phone numbers are deleted; "
             "codes are short-lived and only their hashes are stored")
declare("jobs", erase="custom", export=False, merge="none",
        note="queued work: jobs whose payload names the person's customer, conversation or "
             "message ids are deleted (outbox deliveries among them)")

declare("channel_access_tokens", holds_personal_data=False,
        note="the channels' provider access tokens, encrypted")

# -- points ------------------------------------------------------------------------------------
declare("points_entries", link=("customer_id",),
        note="the person's points ledger; deleted on erasure (the balance ends with the "
             "account)")

declare("rewards", holds_personal_data=False, note="the rewards catalogue and its stock")
declare("reward_redemptions", link=("customer_id",),
        note="rewards the person redeemed; deleted with the person's ledger")

# -- appointments ------------------------------------------------------------------------------
declare("appointment_service_types", holds_personal_data=False,
        note="the services advisors offer (营养咨询 15 分钟 ...)")
declare("appointment_slots", holds_personal_data=False,
        note="advisors' published times: staff, not customers")
declare("appointments", link=("customer_id",),
        note="the person's bookings with an advisor (time, service, status, staff note); "
             "deleted on erasure, which frees their slots")

# -- referrals ---------------------------------------------------------------------------------
declare("referral_codes", link=("customer_id",),
        note="a customer's invite code (channel codes hold no personal data); deleted with "
             "the person")
declare("referral_attributions", link=("referred_id", "referrer_id"),
        note="who arrived through which code and whether it qualified or was refused")

# -- customer groups ----------------------------------------------------------------------------
declare("customer_groups", holds_personal_data=False,
        note="the brand's WeCom customer groups (name, owner employee)")
declare("customer_group_members", link=("customer_id",),
        note="the person's membership of a customer group (WeCom external userid)")

# -- content ----------------------------------------------------------------------------------
declare("content_items", holds_personal_data=False, note="the brand's articles and cards")
declare("content_links", link=("customer_id",),
        note="a content link sent to the person in one message")
declare("content_clicks", link=("customer_id",),
        note="the person's clicks on content links (anonymous clicks name no one)")

# -- playbooks ---------------------------------------------------------------------------------
declare("playbooks", holds_personal_data=False, note="the brand's SOP playbooks")
declare("playbook_versions", holds_personal_data=False, note="applied playbook files")
declare("contact_policy", holds_personal_data=False, note="quiet hours, caps, limits")
declare("playbook_runs", link=("customer_id",),
        note="the person going through a playbook; the trigger record's properties")
declare("playbook_step_log", link=("customer_id",),
        note="what each step did for the person (sent, deferred, suppressed with reason)")
declare("playbook_tasks", link=("customer_id",),
        note="calls and appointments for staff; the note may quote the person's profile")

# -- catalogue and journeys --------------------------------------------------------------------
declare("products", holds_personal_data=False, note="the brand's product catalogue")
declare("journey_stage_rules", holds_personal_data=False, note="the brand's stage rules")
declare("scenarios", holds_personal_data=False, note="scenario definitions")
declare("customer_journeys", link=("customer_id",), merge="recompute",
        note="the current journey stage, recomputed for the survivor after a merge")
declare("customer_scenarios", link=("customer_id",), merge="recompute",
        note="active scenarios with their why (may quote a message), recomputed after a merge")
declare("repurchase_due", link=("customer_id",), merge="recompute",
        note="when the latest purchase runs out, rebuilt by each recomputation")

# -- phone channel -----------------------------------------------------------------------------
declare("phone_calls", link=("customer_id",),
        note="calls with the calling number and the transcript")
declare("phone_webhook_events", holds_personal_data=False,
        note="accepted event ids and call ids only, for replay protection")

# -- voice of the customer ---------------------------------------------------------------------
for _name in ("voc_changes", "voc_factors", "voc_models", "voc_surveys", "voc_questions"):
    declare(_name, holds_personal_data=False, note="survey definitions and feedback models")
declare("voc_responses", link=("customer_id",), merge="move",
        note="a customer's survey responses")
declare("voc_answers", via=("response_id", "voc_responses"),
        note="the answers of a response; free text may quote the person")
declare("voc_feedback", link=("customer_id",), merge="move",
        note="feedback text (survey answers, reviews) with its sentiment")
declare("voc_mentions", link=("customer_id",), merge="move",
        note="the factors a feedback text names, with the clause")

# -- knowledge base ----------------------------------------------------------------------------
for _name in ("kb_intents", "kb_intent_examples", "kb_faq", "kb_keyword_rules", "kb_nlu_models"):
    declare(_name, holds_personal_data=False, note="the brand's knowledge base")

# -- staff and access --------------------------------------------------------------------------
declare("users", holds_personal_data=False, note="staff accounts, not customers")
declare("api_keys", holds_personal_data=False, note="only key hashes")
declare("user_sessions", holds_personal_data=False,
        note="staff sign-in sessions: token hashes, staff address and browser")
declare("login_throttles", holds_personal_data=False,
        note="failed sign-in counts under keyed hashes of the name and address")
declare("install_secrets", holds_personal_data=False, note="the install's master secret")

# -- privacy -----------------------------------------------------------------------------------
declare("audit_log", holds_personal_data=False,
        retention=("retention_audit_days", "at"),
        note="append-only; never holds personal values (record_audit masks them)")
declare("audit_purge_permits", holds_personal_data=False)
declare("privacy_suppressions", holds_personal_data=False,
        note="keyed hashes of erased identities (do-not-contact); kept")
