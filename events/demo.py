"""Realistic demo data: a year of a freemium SaaS product's users and events, with planted truths.

Pure (no Django). ``generate_demo`` draws users and events from a generative model whose key
quantities are known exactly, and returns them with a ``truth`` dict that states each planted
value, the population it applies to, and the value realized in the sample:

* ``segments``: 90-day revenue per user by plan at signup and by acquisition channel (the channel
  only scales payment amounts, by a known multiplier).
* ``early_behaviour``: 2+ reports in the first 7 days multiplies the odds of upgrading within
  60 days by a known odds ratio (logistic model, free-plan users).
* ``funnel``: signup -> onboarding_completed -> report_created -> invite_sent -> upgrade within
  14 days, with known per-step conversion probabilities (free-plan users).
* ``experiment``: an A/B test of an onboarding checklist that lifts 7-day onboarding on web by a
  known amount and does nothing on mobile.

Everything is vectorized over users and events (loops only over event kinds), and every time is
an integer number of seconds, so windows such as "within 7 days" have no rounding ambiguity.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

DAY = 86_400
HISTORY_DAYS = 365
HORIZON = HISTORY_DAYS * DAY
DEFAULT_END = datetime(2026, 11, 1, tzinfo=UTC)
EPOCH_2000 = int(datetime(2000, 1, 1, tzinfo=UTC).timestamp())
ISO_FORMAT = "%Y-%m-%dT%H:%M:%SZ"

EVENT_COLUMNS = ["user_id", "event", "timestamp", "revenue", "properties"]
USER_COLUMNS = ["user_id", "signup_time", "plan", "device", "country", "company_size",
                "acquisition_channel"]

# Event codes double as the tie-break order of events in the same second.
EVENTS = ("signup", "session_start", "experiment_assigned", "onboarding_completed",
          "feature_used", "report_created", "invite_sent", "upgrade", "purchase")
(SIGNUP, SESSION, ASSIGNED, ONBOARDED, FEATURE, REPORT, INVITE, UPGRADE, PURCHASE) = range(9)

# ----- population ------------------------------------------------------------------------------
PLANS = ("free", "pro", "team")
PLAN_P = np.array([0.72, 0.20, 0.08])
DEVICES = ("web", "ios", "android")
DEVICE_P = np.array([0.55, 0.25, 0.20])
CHANNELS = ("organic", "paid", "referral", "partner")
CHANNEL_P = np.array([0.45, 0.30, 0.15, 0.10])
CHANNEL_MULTIPLIER = np.array([1.0, 0.85, 1.15, 1.6])
COUNTRIES = ("US", "IN", "GB", "DE", "FR", "BR", "CA", "AU", "NL", "JP")
COUNTRY_P = np.array([0.35, 0.12, 0.10, 0.10, 0.07, 0.08, 0.06, 0.04, 0.04, 0.04])
COUNTRY_UTC_OFFSET = np.array([-5, 5, 0, 1, 1, -3, -5, 10, 1, 9])
COMPANY_SIZE_LOG_MEDIAN = np.log(np.array([8.0, 25.0, 120.0]))  # by plan
# Local hour of signups: quiet at night, busy in office hours.
HOUR_WEIGHTS = np.array([1.0, 0.6, 0.4, 0.3, 0.3, 0.4, 0.8, 1.5, 2.5, 3.5, 4.0, 4.0,
                         3.6, 3.8, 4.0, 3.8, 3.3, 2.7, 2.2, 2.0, 1.9, 1.8, 1.6, 1.3])
HOUR_P = HOUR_WEIGHTS / HOUR_WEIGHTS.sum()
SIGNUP_GROWTH = 2.5  # signups per day grow 2.5x over the year
WEEKEND_FACTOR = 0.55
LAUNCH_DAYS_BEFORE_END = 200  # a launch that spikes signups for two days
LAUNCH_BOOST = (4.0, 2.0)

# ----- money -----------------------------------------------------------------------------------
PRICE = np.array([0.0, 29.0, 99.0])  # per month, by plan
RENEWAL = np.array([0.0, 0.88, 0.93])  # probability of paying again next month, by plan
UPGRADE_TO_TEAM = 0.2  # upgrades go to pro, or to team with this probability
MAX_PAYMENTS = 13
# Amount of one payment by (plan, channel); exact in cents, so the multipliers are exact.
AMOUNT = np.round(PRICE[:, None] * CHANNEL_MULTIPLIER[None, :], 2)

# ----- behaviour -------------------------------------------------------------------------------
ONBOARD_P = np.array([0.55, 0.62, 0.58])  # within 7 days, by device
LATE_ONBOARD_P = 0.15  # of the rest, onboard 15-45 days after signup (outside every window)
REPORT_P = 0.60  # onboarded -> first report after onboarding, within 14 days
EARLY_REPORTER_SHARE = 0.45  # of those, 2+ reports in the first 7 days
INVITE_P = 0.35  # reported -> invite after the first report, within 14 days
FUNNEL_UPGRADE_P = 0.10  # invited -> upgrade after the invite, within 14 days
BASELINE_UPGRADE_P = 0.12  # upgrade within 60 days without the early reports
EARLY_ODDS_RATIO = 3.0
LATE_UPGRADE_P = 0.05  # of free users not upgraded by day 60, upgrade on days 60-365
FUNNEL_DAYS = 14
EARLY_DAYS = 7
UPGRADE_DAYS = 60
REVENUE_DAYS = 90

# ----- experiment ------------------------------------------------------------------------------
EXPERIMENT_ID = "onboarding_checklist_v2"
EXPERIMENT_ARMS = ("control", "treatment")
EXPERIMENT_START_DAYS_BEFORE_END = 120
EXPERIMENT_STOP_DAYS_BEFORE_END = 7
EXPERIMENT_WINDOW_DAYS = 7
TREATMENT_LIFT = np.array([0.08, 0.0, 0.0])  # absolute lift of 7-day onboarding, by device

# ----- activity noise --------------------------------------------------------------------------
EARLY_CHURN_P = np.array([0.35, 0.10, 0.10])  # gone within 3 days, by plan
LIFETIME_MEAN_DAYS = np.array([75.0, 180.0, 270.0])
SESSIONS_PER_ACTIVE_DAY = 0.04  # mean of a gamma-distributed per-user rate
SESSION_RATE_SHAPE = 0.9
FEATURES_PER_SESSION = 0.6
FEATURES = ("dashboards", "segments", "funnels", "retention", "cohorts", "alerts", "exports",
            "sql_editor")
FEATURE_WEIGHTS = np.array([0.26, 0.18, 0.15, 0.12, 0.10, 0.08, 0.07, 0.04])
LATER_REPORT_P = 0.12  # per session after the funnel window, once onboarded
LATER_INVITE_P = 0.03


def _json(obj: dict[str, str]) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"))


# Property vocabulary: code 0 is "no properties".
PROPERTIES: list[str | None] = [None]
FEATURE_PROP0 = len(PROPERTIES)
PROPERTIES += [_json({"feature": f}) for f in FEATURES]
ARM_PROP0 = len(PROPERTIES)
PROPERTIES += [_json({"experiment": EXPERIMENT_ID, "arm": a}) for a in EXPERIMENT_ARMS]
UPGRADE_PROP = {1: len(PROPERTIES), 2: len(PROPERTIES) + 1}
PROPERTIES += [_json({"from_plan": "free", "to_plan": p}) for p in PLANS[1:]]
PURCHASE_PROP = {1: len(PROPERTIES), 2: len(PROPERTIES) + 1}
PROPERTIES += [_json({"plan": p}) for p in PLANS[1:]]
PROPERTY_PLAN = np.full(len(PROPERTIES), -1)  # plan a payment property is for
for _plan in (1, 2):
    PROPERTY_PLAN[UPGRADE_PROP[_plan]] = PROPERTY_PLAN[PURCHASE_PROP[_plan]] = _plan
PROPERTY_SLOTS = 16
assert len(PROPERTIES) <= PROPERTY_SLOTS


@dataclass(frozen=True)
class DemoData:
    """Generated users, events and the truths planted in them."""

    events: pd.DataFrame
    users: pd.DataFrame
    truth: dict[str, Any]


# ----- helpers ---------------------------------------------------------------------------------
def _iso(epoch_seconds: int) -> str:
    return datetime.fromtimestamp(int(epoch_seconds), tz=UTC).strftime(ISO_FORMAT)


def _civil_dates(days: np.ndarray) -> np.ndarray:
    """"YYYY-MM-DD" as a (len, 10) uint8 array for days since 1970-01-01 (years 1000-9999)."""
    z = days + 719_468  # proleptic Gregorian date from a day number, by 400-year eras
    era = np.floor_divide(z, 146_097)
    doe = z - era * 146_097
    yoe = (doe - doe // 1460 + doe // 36_524 - doe // 146_096) // 365
    doy = doe - (365 * yoe + yoe // 4 - yoe // 100)
    mp = (5 * doy + 2) // 153
    day = doy - (153 * mp + 2) // 5 + 1
    month = np.where(mp < 10, mp + 3, mp - 9)
    year = yoe + era * 400 + (month <= 2)
    out = np.full((len(days), 10), ord("-"), dtype=np.uint8)
    for value, pos, width in ((year, 0, 4), (month, 5, 2), (day, 8, 2)):
        for i in range(width):
            out[:, pos + width - 1 - i] = value // 10**i % 10 + 48
    return out


def _clock_table() -> np.ndarray:
    """"HH:MM:SSZ" as a (86400, 9) uint8 array indexed by second of the day."""
    sod = np.arange(DAY)
    out = np.full((DAY, 9), ord(":"), dtype=np.uint8)
    out[:, 8] = ord("Z")
    for value, pos in ((sod // 3600, 0), (sod // 60 % 60, 3), (sod % 60, 6)):
        out[:, pos], out[:, pos + 1] = value // 10 + 48, value % 10 + 48
    return out


def _iso_array(epoch_seconds: np.ndarray) -> pa.Array:
    """"YYYY-MM-DDTHH:MM:SSZ" strings for epoch seconds, assembled as bytes from lookup tables."""
    days, sod = np.divmod(np.asarray(epoch_seconds, dtype=np.int64), DAY)
    chars = np.empty((len(days), 20), dtype=np.uint8)
    if len(days):
        first = int(days.min())
        if int(days.max()) - first < 1_000_000:
            chars[:, :10] = _civil_dates(np.arange(first, int(days.max()) + 1))[days - first]
        else:
            unique, inverse = np.unique(days, return_inverse=True)
            chars[:, :10] = _civil_dates(unique)[inverse]
    chars[:, 10] = ord("T")
    chars[:, 11:] = _clock_table()[sod]
    kind, offset_type = ((pa.string(), np.int32) if chars.size < 2**31
                         else (pa.large_string(), np.int64))
    offsets = np.arange(0, chars.size + 1, 20, dtype=offset_type)
    return pa.Array.from_buffers(kind, len(days),
                                 [None, pa.py_buffer(offsets), pa.py_buffer(chars)])


def _span(rng: np.random.Generator, lo: np.ndarray, hi: np.ndarray, a: float = 1.0,
          b: float = 3.0) -> np.ndarray:
    """Integer seconds in [lo, hi), skewed early by a Beta(a, b) draw; lo where hi <= lo."""
    width = np.maximum(hi - lo, 1)
    return lo + np.minimum(np.floor(rng.beta(a, b, len(lo)) * width).astype(np.int64), width - 1)


def _uniform(rng: np.random.Generator, lo: np.ndarray | int, hi: np.ndarray | int,
             size: int) -> np.ndarray:
    """Integer seconds uniform in [lo, hi) (hi > lo)."""
    return (np.asarray(lo) + np.floor(rng.random(size) * (np.asarray(hi) - np.asarray(lo)))
            ).astype(np.int64)


def _repeat(users: np.ndarray, counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(user index per row, 0-based rank of the row within its user) for ``counts`` rows each."""
    uid = np.repeat(users, counts)
    rank = np.arange(len(uid)) - np.repeat(np.cumsum(counts) - counts, counts)
    return uid, rank


def _signup_day_weights(start_epoch: int) -> np.ndarray:
    """Share of signups on each day of the year: growth, quiet weekends, holidays, a launch."""
    days = pd.to_datetime(start_epoch // DAY + np.arange(HISTORY_DAYS), unit="D")
    weights = np.exp(np.log(SIGNUP_GROWTH) * np.arange(HISTORY_DAYS) / HISTORY_DAYS)
    weights[days.day_of_week.to_numpy() >= 5] *= WEEKEND_FACTOR
    month, day = days.month.to_numpy(), days.day.to_numpy()
    weights[((month == 12) & (day >= 23)) | ((month == 1) & (day == 1))] *= 0.5
    launch = HISTORY_DAYS - LAUNCH_DAYS_BEFORE_END
    weights[launch:launch + len(LAUNCH_BOOST)] *= LAUNCH_BOOST
    return weights / weights.sum()


def _logit(p: float) -> float:
    return math.log(p / (1 - p))


def _exposed_upgrade_p() -> float:
    odds = BASELINE_UPGRADE_P / (1 - BASELINE_UPGRADE_P) * EARLY_ODDS_RATIO
    return odds / (1 + odds)


# ----- generation ------------------------------------------------------------------------------
def _draw_users(rng: np.random.Generator, n: int, start_epoch: int) -> dict[str, np.ndarray]:
    day = rng.choice(HISTORY_DAYS, size=n, p=_signup_day_weights(start_epoch))
    country = rng.choice(len(COUNTRIES), size=n, p=COUNTRY_P)
    local_hour = rng.choice(24, size=n, p=HOUR_P)
    raw = day * DAY + (local_hour - COUNTRY_UTC_OFFSET[country]) * 3600 + rng.integers(0, 3600, n)
    signup = np.mod(raw, HORIZON).astype(np.int64)
    order = np.argsort(signup, kind="stable")  # user ids follow signup order
    plan = rng.choice(len(PLANS), size=n, p=PLAN_P)
    size = np.rint(np.exp(rng.normal(COMPANY_SIZE_LOG_MEDIAN[plan], 1.1)))
    return {
        "signup": signup[order],
        "country": country[order],
        "plan": plan,
        "device": rng.choice(len(DEVICES), size=n, p=DEVICE_P),
        "channel": rng.choice(len(CHANNELS), size=n, p=CHANNEL_P),
        "company_size": np.clip(size, 1, 50_000).astype(np.int64),
    }


def _draw_behaviour(rng: np.random.Generator, u: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Planted behaviour per user; all times are seconds after the user's signup."""
    n = len(u["signup"])
    s, device, plan = u["signup"], u["device"], u["plan"]
    b: dict[str, np.ndarray] = {}
    exp_start = HORIZON - EXPERIMENT_START_DAYS_BEFORE_END * DAY
    exp_stop = HORIZON - EXPERIMENT_STOP_DAYS_BEFORE_END * DAY
    b["enrolled"] = (s >= exp_start) & (s < exp_stop)
    b["treatment"] = b["enrolled"] & (rng.random(n) < 0.5)
    p_onboard = ONBOARD_P[device] + np.where(b["treatment"], TREATMENT_LIFT[device], 0.0)
    onboarded = rng.random(n) < p_onboard
    delay = np.clip(np.rint(np.exp(rng.normal(np.log(2400.0), 1.6, n))), 120, 6 * DAY)
    late = ~onboarded & (rng.random(n) < LATE_ONBOARD_P)
    late_at = _uniform(rng, 15 * DAY, 45 * DAY, n)
    b["onboarded"] = onboarded
    b["onboard_at"] = np.where(onboarded, delay.astype(np.int64), np.where(late, late_at, -1))

    # Reports: only after onboarding. "early" users have 2+ in the first 7 days; the other
    # reporters have exactly one before day 7 (a) or their first on days 7-13 (b).
    reporter = onboarded & (rng.random(n) < REPORT_P)
    early = reporter & (rng.random(n) < EARLY_REPORTER_SHARE)
    split = rng.random(n) < 0.5
    one_early = reporter & ~early & split
    none_early = reporter & ~early & ~split
    lo = b["onboard_at"] + 60
    lo = np.where(none_early, np.maximum(lo, EARLY_DAYS * DAY), lo)
    hi = np.where(none_early, 13 * DAY, EARLY_DAYS * DAY - 300)
    b["reporter"], b["early"] = reporter, early
    b["report1"] = _span(rng, lo, hi)
    b["report2"] = _span(rng, b["report1"] + 60, np.full(n, EARLY_DAYS * DAY - 120))
    b["more_reports_from"] = np.where(early, b["report2"] + 60,
                                      np.where(one_early, EARLY_DAYS * DAY, b["report1"] + 60))
    b["more_reports"] = rng.poisson(np.where(early, 0.8, 0.5) * reporter)

    # Invites: only after the first report.
    invited = reporter & (rng.random(n) < INVITE_P)
    b["invited"] = invited
    b["invite_at"] = _span(rng, b["report1"] + 60, np.full(n, 13 * DAY + DAY // 2))
    b["more_invites"] = rng.poisson(0.4 * invited)

    # Upgrades (free plan only): logistic in "early"; invited upgraders upgrade inside the
    # funnel window with probability FUNNEL_UPGRADE_P / p, so P(funnel upgrade | invited) is
    # FUNNEL_UPGRADE_P whatever "early" is. Everyone else upgrades after the 14-day trial.
    free = plan == 0
    p_up = np.where(early, _exposed_upgrade_p(), BASELINE_UPGRADE_P)
    up60 = free & (rng.random(n) < p_up)
    fast = up60 & invited & (rng.random(n) < FUNNEL_UPGRADE_P / p_up)
    slow = up60 & ~fast
    late_up = free & ~up60 & (rng.random(n) < LATE_UPGRADE_P)
    b["up60"], b["fast_upgrade"] = up60, fast
    b["upgraded"] = up60 | late_up
    b["upgrade_at"] = np.select(
        [fast, slow, late_up],
        [_span(rng, b["invite_at"] + 60, np.full(n, FUNNEL_DAYS * DAY - 60)),
         _uniform(rng, FUNNEL_DAYS * DAY, UPGRADE_DAYS * DAY, n),
         _uniform(rng, UPGRADE_DAYS * DAY, HORIZON, n)],
        -1,
    )

    # Payments: paid plans from signup, upgraders from the upgrade; monthly until they cancel.
    paid = ~free
    b["pay_plan"] = np.where(paid, plan, np.where(rng.random(n) < UPGRADE_TO_TEAM, 2, 1))
    b["payer"] = paid | b["upgraded"]
    b["first_pay"] = np.where(paid, _uniform(rng, 30, 600, n), b["upgrade_at"])
    renewal = np.where(b["payer"], RENEWAL[b["pay_plan"]], 0.0)
    b["payments"] = np.minimum(rng.geometric(1.0 - renewal), MAX_PAYMENTS)

    # Activity lifetime (churn): drawn, but long enough to cover planted events and the paid
    # period.
    paid_until = np.where(b["payer"], b["first_pay"] + b["payments"] * 30 * DAY, 0)
    planted_end = np.maximum.reduce([
        np.where(reporter, FUNNEL_DAYS * DAY, np.maximum(b["onboard_at"], 0)),
        np.maximum(b["upgrade_at"], 0),
        paid_until,
    ])
    gone_early = rng.random(n) < EARLY_CHURN_P[plan]
    drawn = np.where(gone_early, _uniform(rng, 0, 3 * DAY, n),
                     (rng.exponential(1.0, n) * LIFETIME_MEAN_DAYS[plan] * DAY).astype(np.int64))
    life = np.maximum(drawn, planted_end + _uniform(rng, 0, 2 * DAY, n))
    b["active"] = np.maximum(np.minimum(life, HORIZON - s), 1)
    b["session_rate"] = rng.gamma(SESSION_RATE_SHAPE, SESSIONS_PER_ACTIVE_DAY / SESSION_RATE_SHAPE,
                                  n)
    return b


class _Events:
    """Columns of events as they are drawn: user index, seconds after signup, code, property."""

    def __init__(self) -> None:
        self.parts: list[tuple[np.ndarray, np.ndarray, np.ndarray | int, np.ndarray | int]] = []

    def add(self, uid: np.ndarray, rel: np.ndarray, code: np.ndarray | int,
            prop: np.ndarray | int = 0) -> None:
        self.parts.append((uid, rel, code, prop))

    def columns(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        uid = np.concatenate([p[0] for p in self.parts]).astype(np.int64)
        rel = np.concatenate([p[1] for p in self.parts]).astype(np.int64)
        code = np.concatenate([np.broadcast_to(p[2], len(p[0])) for p in self.parts])
        prop = np.concatenate([np.broadcast_to(p[3], len(p[0])) for p in self.parts])
        return uid, rel, code.astype(np.int64), prop.astype(np.int64)


def _draw_events(rng: np.random.Generator, u: dict[str, np.ndarray],
                 b: dict[str, np.ndarray]) -> _Events:
    n = len(u["signup"])
    ev = _Events()
    everyone = np.arange(n)
    ev.add(everyone, np.zeros(n, np.int64), SIGNUP)

    who = np.flatnonzero(b["enrolled"])
    ev.add(who, _uniform(rng, 1, 30, len(who)), ASSIGNED,
           ARM_PROP0 + b["treatment"][who].astype(np.int64))
    who = np.flatnonzero(b["onboard_at"] >= 0)
    ev.add(who, b["onboard_at"][who], ONBOARDED)

    who = np.flatnonzero(b["reporter"])
    ev.add(who, b["report1"][who], REPORT)
    who = np.flatnonzero(b["early"])
    ev.add(who, b["report2"][who], REPORT)
    uid, _ = _repeat(everyone, b["more_reports"])
    ev.add(uid, _uniform(rng, b["more_reports_from"][uid], FUNNEL_DAYS * DAY, len(uid)), REPORT)
    who = np.flatnonzero(b["invited"])
    ev.add(who, b["invite_at"][who], INVITE)
    uid, _ = _repeat(everyone, b["more_invites"])
    ev.add(uid, _uniform(rng, b["invite_at"][uid] + 60, FUNNEL_DAYS * DAY, len(uid)), INVITE)

    payers = np.flatnonzero(b["payer"])
    uid, month = _repeat(payers, b["payments"][payers])
    is_upgrade = b["upgraded"][uid] & (month == 0)
    pay_plan = b["pay_plan"][uid]
    prop = np.where(is_upgrade, np.where(pay_plan == 2, UPGRADE_PROP[2], UPGRADE_PROP[1]),
                    np.where(pay_plan == 2, PURCHASE_PROP[2], PURCHASE_PROP[1]))
    ev.add(uid, b["first_pay"][uid] + month * 30 * DAY, np.where(is_upgrade, UPGRADE, PURCHASE),
           prop)

    # Sessions: one at signup, then a Poisson number spread over the active lifetime.
    extra = rng.poisson(b["session_rate"] * b["active"] / DAY)
    uid, _ = _repeat(everyone, extra)
    s_uid = np.concatenate([everyone, uid])
    s_rel = np.concatenate([np.zeros(n, np.int64), _uniform(rng, 0, b["active"][uid], len(uid))])
    ev.add(s_uid, s_rel, SESSION)
    per_session = rng.poisson(FEATURES_PER_SESSION, len(s_uid))
    f_uid, f_rank = _repeat(s_uid, per_session)
    f_rel = np.repeat(s_rel, per_session) + _uniform(rng, 5, 1800, len(f_uid)) + f_rank * 60
    feature = rng.choice(len(FEATURES), size=len(f_uid), p=FEATURE_WEIGHTS / FEATURE_WEIGHTS.sum())
    ev.add(f_uid, f_rel, FEATURE, FEATURE_PROP0 + feature)
    # Later reports and invites happen in sessions after the funnel window, once onboarded.
    onboard_at = b["onboard_at"][s_uid]
    eligible = (s_rel >= FUNNEL_DAYS * DAY) & (onboard_at >= 0) & (s_rel > onboard_at)
    draw = rng.random(len(s_uid))
    for code, chosen in ((REPORT, eligible & (draw < LATER_REPORT_P)),
                         (INVITE, eligible & (draw >= LATER_REPORT_P)
                          & (draw < LATER_REPORT_P + LATER_INVITE_P))):
        idx = np.flatnonzero(chosen)
        ev.add(s_uid[idx], s_rel[idx] + _uniform(rng, 60, 1800, len(idx)), code)
    return ev


def _finish_events(ev: _Events, u: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Absolute times, cut at the end, sorted by (time, user, event), exact duplicates dropped."""
    n = len(u["signup"])
    uid, rel, code, prop = ev.columns()
    ev.parts.clear()
    at = u["signup"][uid] + rel
    keep = at < HORIZON
    uid, at, code, prop = uid[keep], at[keep], code[keep], prop[keep]
    if HORIZON * n * len(EVENTS) * PROPERTY_SLOTS < 2**63:
        key = ((at * n + uid) * len(EVENTS) + code) * PROPERTY_SLOTS + prop
        del uid, code, prop
        key.sort()
        key = key[np.concatenate([[True], key[1:] != key[:-1]])]
        prop = key % PROPERTY_SLOTS
        key //= PROPERTY_SLOTS
        code = key % len(EVENTS)
        key //= len(EVENTS)
        uid = key % n
        at = key // n
    else:  # pragma: no cover - only for billions of users
        order = np.lexsort((prop, code, uid, at))
        uid, at, code, prop = uid[order], at[order], code[order], prop[order]
        dup = np.zeros(len(at), bool)
        dup[1:] = ((at[1:] == at[:-1]) & (uid[1:] == uid[:-1]) & (code[1:] == code[:-1])
                   & (prop[1:] == prop[:-1]))
        uid, at, code, prop = uid[~dup], at[~dup], code[~dup], prop[~dup]
    plan = PROPERTY_PLAN[prop]
    revenue = np.where(plan >= 0, AMOUNT[np.maximum(plan, 0), u["channel"][uid]], np.nan)
    return {"uid": uid, "at": at, "code": code, "prop": prop, "revenue": revenue}


def _frames(u: dict[str, np.ndarray], e: dict[str, np.ndarray],
            start_epoch: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    n = len(u["signup"])
    width = max(6, len(str(n - 1)))
    digits = pc.utf8_lpad(pc.cast(pa.array(np.arange(n)), pa.string()), width=width, padding="0")
    ids = pc.binary_join_element_wise("u", digits, "")

    def names(values: tuple[str, ...], codes: np.ndarray) -> pd.Series:
        return pc.take(pa.array(values), pa.array(codes)).to_pandas()

    users = pd.DataFrame({
        "user_id": ids.to_pandas(),
        "signup_time": _iso_array(start_epoch + u["signup"]).to_pandas(),
        "plan": names(PLANS, u["plan"]),
        "device": names(DEVICES, u["device"]),
        "country": names(COUNTRIES, u["country"]),
        "company_size": u["company_size"],
        "acquisition_channel": names(CHANNELS, u["channel"]),
    })
    props = pa.array(PROPERTIES, type=pa.string())
    prop_codes = pa.array(e["prop"], mask=e["prop"] == 0)
    events = pd.DataFrame({
        "user_id": pc.take(ids, pa.array(e["uid"])).to_pandas(),
        "event": names(EVENTS, e["code"]),
        "timestamp": _iso_array(start_epoch + e["at"]).to_pandas(),
        "revenue": e["revenue"],
        "properties": pc.take(props, prop_codes).to_pandas(),
    })
    return users, events


# ----- truths ----------------------------------------------------------------------------------
def _rate(hits: int, total: int) -> float | None:
    return hits / total if total else None


def _planted_free_revenue() -> float:
    """Expected 90-day revenue of a free signup before the experiment (at channel multiplier 1)."""
    onboard = float(DEVICE_P @ ONBOARD_P)
    early = onboard * REPORT_P * EARLY_REPORTER_SHARE
    invited = onboard * REPORT_P * INVITE_P
    up60 = BASELINE_UPGRADE_P + (_exposed_upgrade_p() - BASELINE_UPGRADE_P) * early
    fast = invited * FUNNEL_UPGRADE_P
    slow = up60 - fast  # uniform on days 14-60
    late = (1 - up60) * LATE_UPGRADE_P  # uniform on days 60-365
    span = UPGRADE_DAYS - FUNNEL_DAYS
    # Probability that the upgrade leaves 3, 2 or 1 monthly payments inside 90 days.
    three = fast + slow * (30 - FUNNEL_DAYS) / span
    two = slow * (UPGRADE_DAYS - 30) / span
    one = late * (REVENUE_DAYS - UPGRADE_DAYS) / (HISTORY_DAYS - UPGRADE_DAYS)
    total = 0.0
    for plan, share in ((1, 1 - UPGRADE_TO_TEAM), (2, UPGRADE_TO_TEAM)):
        r = RENEWAL[plan]
        total += share * PRICE[plan] * (three * (1 + r + r * r) + two * (1 + r) + one)
    return float(total)


def _planted_plan_revenue() -> np.ndarray:
    """Expected 90-day revenue by plan at signup, at channel multiplier 1."""
    paid = PRICE * (1 + RENEWAL + RENEWAL**2)
    return np.array([_planted_free_revenue(), paid[1], paid[2]])


def _segments_truth(u: dict[str, np.ndarray], e: dict[str, np.ndarray],
                    cohort: np.ndarray, cohort_before: int) -> dict[str, Any]:
    n = len(u["signup"])
    paid_event = ~np.isnan(e["revenue"])
    in_window = paid_event & (e["at"] - u["signup"][e["uid"]] < REVENUE_DAYS * DAY)
    revenue = np.bincount(e["uid"][in_window], weights=e["revenue"][in_window], minlength=n)
    base = _planted_plan_revenue()
    mean_multiplier = float(CHANNEL_P @ CHANNEL_MULTIPLIER)
    mean_base = float(PLAN_P @ base)

    def realized(mask: np.ndarray) -> dict[str, Any]:
        values = revenue[mask & cohort]
        return {"users": int(len(values)),
                "realized_mean": float(values.mean()) if len(values) else None,
                "realized_std": float(values.std(ddof=1)) if len(values) > 1 else None}

    by_plan = {
        name: {"planted_mean": float(base[i] * mean_multiplier),
               "planted_ratio_to_free": float(base[i] / base[0]),
               **realized(u["plan"] == i)}
        for i, name in enumerate(PLANS)
    }
    by_channel = {
        name: {"multiplier": float(CHANNEL_MULTIPLIER[i]),
               "planted_mean": float(CHANNEL_MULTIPLIER[i] * mean_base),
               **realized(u["channel"] == i)}
        for i, name in enumerate(CHANNELS)
    }
    return {
        "metric": "revenue_90d",
        "definition": "per user: sum of revenue of events with 0 <= timestamp - signup_time < "
                      "90 days (0 if none); segment value = mean over the segment's users",
        "cohort": {"signup_before": cohort_before, "users": int(cohort.sum()),
                   "note": "users who signed up before the experiment started; all have a full "
                           "90-day window"},
        "plan_is": "plan at signup (users.plan)",
        "price_per_month": {"pro": float(PRICE[1]), "team": float(PRICE[2])},
        "monthly_renewal": {"pro": float(RENEWAL[1]), "team": float(RENEWAL[2])},
        "channel_multipliers": {c: float(m) for c, m in zip(CHANNELS, CHANNEL_MULTIPLIER,
                                                           strict=True)},
        "channel_independent_of_plan": True,
        "by_plan": by_plan,
        "by_channel": by_channel,
        "planted_mean_by_plan_and_channel": {
            p: {c: float(base[i] * CHANNEL_MULTIPLIER[j]) for j, c in enumerate(CHANNELS)}
            for i, p in enumerate(PLANS)
        },
        "overall": {"planted_mean": mean_base * mean_multiplier, **realized(np.ones(n, bool))},
    }


def _early_truth(u: dict[str, np.ndarray], b: dict[str, np.ndarray],
                 cohort_before: int) -> dict[str, Any]:
    cohort = (u["plan"] == 0) & (u["signup"] < HORIZON - UPGRADE_DAYS * DAY)
    x, y = b["early"][cohort], b["up60"][cohort]
    a, bb = int((x & y).sum()), int((x & ~y).sum())
    c, d = int((~x & y).sum()), int((~x & ~y).sum())
    if min(a, bb, c, d) > 0:
        odds_ratio = a * d / (bb * c)
        se = math.sqrt(1 / a + 1 / bb + 1 / c + 1 / d)
        ci = [odds_ratio * math.exp(-1.959964 * se), odds_ratio * math.exp(1.959964 * se)]
    else:
        odds_ratio, se, ci = None, None, None
    exposed = _exposed_upgrade_p()
    return {
        "cohort": {"plan": "free", "signup_before": cohort_before, "users": int(cohort.sum())},
        "exposure": "2+ report_created events with 0 <= timestamp - signup_time < 7 days",
        "outcome": "an upgrade event with 0 <= timestamp - signup_time < 60 days",
        "model": "logit P(outcome) = intercept + coefficient * exposure",
        "planted_odds_ratio": EARLY_ODDS_RATIO,
        "intercept": _logit(BASELINE_UPGRADE_P),
        "coefficient": math.log(EARLY_ODDS_RATIO),
        "baseline_upgrade_probability": BASELINE_UPGRADE_P,
        "exposed_upgrade_probability": exposed,
        "realized": {
            "exposed_upgraded": a, "exposed_not_upgraded": bb,
            "unexposed_upgraded": c, "unexposed_not_upgraded": d,
            "exposed_rate": _rate(a, a + bb), "unexposed_rate": _rate(c, c + d),
            "odds_ratio": odds_ratio, "log_odds_ratio_se": se, "odds_ratio_ci95": ci,
        },
    }


def _funnel_truth(u: dict[str, np.ndarray], b: dict[str, np.ndarray], cohort: np.ndarray,
                  cohort_before: int) -> dict[str, Any]:
    free = cohort & (u["plan"] == 0)
    planted = [1.0, float(DEVICE_P @ ONBOARD_P), REPORT_P, INVITE_P, FUNNEL_UPGRADE_P]
    reached = [int(free.sum())] + [int((free & b[k]).sum())
                                   for k in ("onboarded", "reporter", "invited", "fast_upgrade")]
    return {
        "steps": ["signup", "onboarding_completed", "report_created", "invite_sent", "upgrade"],
        "window_days": FUNNEL_DAYS,
        "definition": "each step's first event strictly after the previous step's and with "
                      "timestamp - signup_time < 14 days; conversion = reached / reached previous",
        "cohort": {"plan": "free", "signup_before": cohort_before, "users": reached[0]},
        "planted_onboarding_by_device": {d: float(p) for d, p in zip(DEVICES, ONBOARD_P,
                                                                    strict=True)},
        "planted": {"step_conversion": planted,
                    "cumulative": [float(v) for v in np.cumprod(planted)]},
        "realized": {
            "users_reaching": reached,
            "step_conversion": [1.0 if reached[0] else None]
            + [_rate(reached[i], reached[i - 1]) for i in range(1, 5)],
            "cumulative": [_rate(r, reached[0]) for r in reached],
        },
    }


def _experiment_truth(u: dict[str, np.ndarray], b: dict[str, np.ndarray],
                      iso: dict[str, str]) -> dict[str, Any]:
    segments: dict[str, Any] = {}
    for name, devices in (("web", (0,)), ("mobile", (1, 2))):
        in_segment = b["enrolled"] & np.isin(u["device"], devices)
        share = DEVICE_P[list(devices)] / DEVICE_P[list(devices)].sum()
        control = float(share @ ONBOARD_P[list(devices)])
        effect = float(share @ TREATMENT_LIFT[list(devices)])
        arms: dict[str, Any] = {}
        for arm, in_arm in (("control", ~b["treatment"]), ("treatment", b["treatment"])):
            users = int((in_segment & in_arm).sum())
            converted = int((in_segment & in_arm & b["onboarded"]).sum())
            arms[arm] = {"users": users, "converted": converted, "rate": _rate(converted, users)}
        rates = (arms["control"]["rate"], arms["treatment"]["rate"])
        segments[name] = {
            "devices": [DEVICES[d] for d in devices],
            "planted_control_rate": control,
            "planted_treatment_rate": control + effect,
            "planted_effect": effect,
            "realized": {**arms, "effect": None if None in rates else rates[1] - rates[0]},
        }
    return {
        "experiment_id": EXPERIMENT_ID,
        "arms": list(EXPERIMENT_ARMS),
        "allocation": {"control": 0.5, "treatment": 0.5},
        "assignment_event": "experiment_assigned",
        "assignment_properties": {"experiment": EXPERIMENT_ID, "arm": "control|treatment"},
        "enrolled": "every user who signed up in [start, stop), assigned seconds after signup",
        "start": iso["experiment_start"],
        "stop": iso["experiment_stop"],
        "metric": "onboarding_completed with 0 <= timestamp - experiment_assigned timestamp "
                  "< 7 days",
        "planted_effect_by_device": {d: float(x) for d, x in zip(DEVICES, TREATMENT_LIFT,
                                                                strict=True)},
        "segments": segments,
    }


def generate_demo(users: int = 50_000, seed: int = 7, end: datetime | None = None) -> DemoData:
    """Generate a deterministic year of SaaS users and events with planted, recoverable truths."""
    n = int(users)
    if n < 1:
        raise ValueError("users must be at least 1")
    end = DEFAULT_END if end is None else end
    if end.tzinfo is None or end.utcoffset() is None:
        raise ValueError("end must be a timezone-aware datetime")
    end_epoch = math.floor(end.timestamp())
    start_epoch = end_epoch - HORIZON
    if start_epoch <= EPOCH_2000:
        raise ValueError("end must leave a year of history after 2000-01-01")
    rng = np.random.default_rng(seed)
    u = _draw_users(rng, n, start_epoch)
    b = _draw_behaviour(rng, u)
    e = _finish_events(_draw_events(rng, u, b), u)
    users_frame, events_frame = _frames(u, e, start_epoch)

    exp_start = HORIZON - EXPERIMENT_START_DAYS_BEFORE_END * DAY
    iso = {"start": _iso(start_epoch), "end": _iso(end_epoch),
           "experiment_start": _iso(start_epoch + exp_start),
           "experiment_stop": _iso(start_epoch + HORIZON - EXPERIMENT_STOP_DAYS_BEFORE_END * DAY),
           "upgrade_cohort_before": _iso(start_epoch + HORIZON - UPGRADE_DAYS * DAY)}
    pre_experiment = u["signup"] < exp_start
    truth: dict[str, Any] = {
        "meta": {
            "generator": "events.demo.generate_demo",
            "users": n,
            "events": int(len(events_frame)),
            "seed": int(seed),
            "start": iso["start"],
            "end": iso["end"],
            "launch_day": _iso(start_epoch + (HISTORY_DAYS - LAUNCH_DAYS_BEFORE_END) * DAY)[:10],
            "time_resolution_seconds": 1,
            "population": {
                "plan": dict(zip(PLANS, PLAN_P.tolist(), strict=True)),
                "device": dict(zip(DEVICES, DEVICE_P.tolist(), strict=True)),
                "acquisition_channel": dict(zip(CHANNELS, CHANNEL_P.tolist(), strict=True)),
                "country": dict(zip(COUNTRIES, COUNTRY_P.tolist(), strict=True)),
            },
            "planted_values_are": "population values of the generating model; realized values "
                                  "are computed from this sample",
        },
        "segments": _segments_truth(u, e, pre_experiment, iso["experiment_start"]),
        "early_behaviour": _early_truth(u, b, iso["upgrade_cohort_before"]),
        "funnel": _funnel_truth(u, b, pre_experiment, iso["experiment_start"]),
        "experiment": _experiment_truth(u, b, iso),
    }
    return DemoData(events=events_frame, users=users_frame, truth=truth)


# ----- writing ---------------------------------------------------------------------------------
def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    table = pa.table({c: pa.array(frame[c], from_pandas=True) for c in frame.columns})
    with path.open("wb") as handle:
        handle.write((",".join(frame.columns) + "\n").encode())
        pa_csv.write_csv(table, handle, pa_csv.WriteOptions(include_header=False,
                                                            quoting_style="needed"))


def write_demo(data: DemoData, out_dir: Path, fmt: str = "csv") -> dict[str, Path]:
    """Write events (CSV or Parquet), users.csv and truth.json into out_dir; return the paths."""
    if fmt not in ("csv", "parquet"):
        raise ValueError(f"unknown format {fmt!r}; expected csv or parquet")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"events": out / f"events.{fmt}", "users": out / "users.csv",
             "truth": out / "truth.json"}
    events = data.events[EVENT_COLUMNS]
    if fmt == "csv":
        _write_csv(events, paths["events"])
    else:
        table = pa.table({c: pa.array(events[c], from_pandas=True) for c in EVENT_COLUMNS})
        pq.write_table(table, paths["events"], compression="zstd")
    _write_csv(data.users[USER_COLUMNS], paths["users"])
    paths["truth"].write_text(json.dumps(data.truth, indent=2) + "\n", encoding="utf-8")
    return paths


# The demo data's planted truths, as segments a council would define.
DEMO_SEGMENTS: list[dict[str, Any]] = [
    {"name": "Team plan", "definition": {"attribute": "plan", "op": "eq", "value": "team"},
     "assumptions": "plan at signup; upgrades later are not counted here"},
    {"name": "Pro plan", "definition": {"attribute": "plan", "op": "eq", "value": "pro"}},
    {"name": "Free plan", "definition": {"attribute": "plan", "op": "eq", "value": "free"}},
    {"name": "Partner channel",
     "definition": {"attribute": "acquisition_channel", "op": "eq", "value": "partner"}},
    {"name": "Early report creators",
     "definition": {"all": [{"attribute": "plan", "op": "eq", "value": "free"},
                            {"event": "report_created", "min_count": 2,
                             "window": {"from_signup_days": [0, 7]}}]},
     "assumptions": "2+ reports in the first week; planted to triple the odds of upgrading"},
    {"name": "Web users", "definition": {"attribute": "device", "op": "eq", "value": "web"}},
    {"name": "Mobile users",
     "definition": {"attribute": "device", "op": "in", "value": ["ios", "android"]}},
    {"name": "Champions (RFM)", "kind": "rfm", "definition": {"rfm": "Champions"}},
    {"name": "At risk (RFM)", "kind": "rfm", "definition": {"rfm": "At risk"}},
]
