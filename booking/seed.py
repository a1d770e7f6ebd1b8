"""The station as it opens: its spaces with their rules, and the council's member units.

The member units are fictional but plausible; staff can rename them later.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from booking.auth.models import Organisation
from booking.spaces.models import Location, Space

STATION = {
    "slug": "bund",
    "name_zh": "外滩金融品巷·零距离党群服务站",
    "name_en": "Bund Finance Lane · Zero-Distance Community Service Station",
    "address_zh": "上海市黄浦区中山东一路（外滩金融集聚带）银行总部大楼一层",
    "address_en": "Ground floor, bank headquarters, Zhongshan East 1st Road, The Bund, Huangpu, Shanghai",
    "timezone": "Asia/Shanghai",
}

WEEKDAYS = range(5)
ALL_DAYS = range(7)


def _hours(days: range, *spans: tuple[str, str]) -> dict[str, list[list[str]]]:
    return {str(day): [[a, b] for a, b in spans] for day in days}


SPACES: list[dict[str, Any]] = [
    {
        "slug": "meeting-room",
        "name_zh": "共享会议室",
        "name_en": "Shared meeting room",
        "description_zh": "可容纳 12 人，配投影与视频会议设备。按半小时预约，一次一组。",
        "description_en": (
            "Seats 12, with a projector and video conferencing. Book by the half hour, one group at a time."
        ),
        "sort_order": 1,
        "color": "steelblue",
        "capacity": 1,
        "unit_label_zh": "间",
        "unit_label_en": "room",
        "people_capacity": 12,
        "time_mode": "grid",
        "grid_minutes": 30,
        "opening_hours": _hours(WEEKDAYS, ("08:30", "21:00")),
        "min_duration_minutes": 30,
        "max_duration_minutes": 240,
        "min_notice_minutes": 30,
        "max_advance_days": 30,
        "max_units_per_booking": 1,
        "max_future_bookings": 5,
        "approval": "over_duration",
        "approval_over_minutes": 180,
    },
    {
        "slug": "exhibition",
        "name_zh": "快闪临展区",
        "name_en": "Pop-up exhibition area",
        "description_zh": "整天预约，1 至 14 天，需提前 7 天申请，由工作人员审核。",
        "description_en": "Whole days, 1 to 14 days, requested at least 7 days ahead and reviewed by staff.",
        "sort_order": 2,
        "color": "darkorange",
        "capacity": 1,
        "unit_label_zh": "展区",
        "unit_label_en": "area",
        "time_mode": "whole_days",
        "grid_minutes": 1440,
        "opening_hours": _hours(ALL_DAYS, ("09:00", "21:00")),
        "min_duration_minutes": 1440,
        "max_duration_minutes": 14 * 1440,
        "min_notice_minutes": 7 * 1440,
        "max_advance_days": 180,
        "max_units_per_booking": 1,
        "max_future_bookings": 2,
        "approval": "always",
        "titles_public": True,
    },
    {
        "slug": "reading-room",
        "name_zh": "职工书屋",
        "name_en": "Reading room",
        "description_zh": "20 个座位，按小时预约，每次最多 4 个座位。",
        "description_en": "20 seats, booked by the hour, up to 4 seats at a time.",
        "sort_order": 3,
        "color": "seagreen",
        "capacity": 20,
        "unit_label_zh": "座",
        "unit_label_en": "seat",
        "people_capacity": 20,
        "time_mode": "grid",
        "grid_minutes": 60,
        "opening_hours": _hours(ALL_DAYS, ("09:00", "21:00")),
        "min_duration_minutes": 60,
        "max_duration_minutes": 240,
        "min_notice_minutes": 0,
        "max_advance_days": 14,
        "max_units_per_booking": 4,
        "max_future_bookings": 6,
        "approval": "never",
    },
    {
        "slug": "cafe",
        "name_zh": "公益咖吧",
        "name_en": "Public-welfare cafe",
        "description_zh": "6 张桌子，固定 30 分钟时段。",
        "description_en": "6 tables in fixed 30-minute slots.",
        "sort_order": 4,
        "color": "saddlebrown",
        "capacity": 6,
        "unit_label_zh": "桌",
        "unit_label_en": "table",
        "people_capacity": 24,
        "time_mode": "fixed_slots",
        "grid_minutes": 30,
        "fixed_slots": [
            [f"{h:02d}:{m:02d}", f"{h + (m + 30) // 60:02d}:{(m + 30) % 60:02d}"]
            for h in range(10, 17)
            for m in (0, 30)
        ],
        "opening_hours": _hours(WEEKDAYS, ("10:00", "17:00")),
        "min_duration_minutes": 30,
        "max_duration_minutes": 60,
        "min_notice_minutes": 0,
        "max_advance_days": 7,
        "max_units_per_booking": 2,
        "max_future_bookings": 4,
        "approval": "never",
    },
    {
        "slug": "cycling-stop",
        "name_zh": "骑行加油站",
        "name_en": "Cycling rest stop",
        "description_zh": "随到随用，无需预约：打气、饮水、休息。",
        "description_en": "Walk in, no booking needed: air, water and a rest.",
        "sort_order": 5,
        "color": "slategray",
        "bookable": False,
        "capacity": 1,
        "opening_hours": _hours(ALL_DAYS, ("07:00", "21:00")),
    },
]

ORGANISATIONS: list[tuple[str, str, str, str]] = [
    ("bund-invest", "外滩投资集团", "Bund Investment Group", "investment"),
    ("huangpu-bank", "黄浦江商业银行", "Huangpu River Commercial Bank", "bank"),
    ("east-coast-bank", "东岸银行上海分行", "East Coast Bank, Shanghai Branch", "bank"),
    ("pudong-dev-bank", "浦江发展银行", "Pujiang Development Bank", "bank"),
    ("haitong-sec", "外滩海通证券", "Bund Haitong Securities", "securities"),
    ("jinling-sec", "金陵证券上海总部", "Jinling Securities Shanghai HQ", "securities"),
    ("peace-insurance", "太平洋人寿保险外滩中心", "Pacific Life Insurance Bund Centre", "insurance"),
    ("anxin-insurance", "安信财产保险", "Anxin Property Insurance", "insurance"),
    ("riverside-fund", "滨江基金管理", "Riverside Fund Management", "fund"),
    ("zhongshan-fund", "中山东路资产管理", "Zhongshan Road Asset Management", "fund"),
    ("clearing-house", "上海金融清算中心", "Shanghai Financial Clearing Centre", "infrastructure"),
    ("bund-exchange", "外滩票据交易所", "Bund Bills Exchange", "exchange"),
    ("finance-university", "上海财经学院外滩校区", "Shanghai Finance College, Bund Campus", "university"),
    ("waitan-street", "外滩街道", "Waitan Subdistrict Office", "street"),
    ("yuyuan-street", "豫园街道", "Yuyuan Subdistrict Office", "street"),
    ("bund-union", "金融外滩工会联盟", "Bund Finance Trade Union Alliance", "union"),
    ("bund-women", "金融外滩妇联", "Bund Finance Women's Federation", "union"),
    ("youth-league", "滨江金融团建联盟", "Riverside Finance Youth League", "union"),
    ("global-trust", "环球信托上海代表处", "Global Trust, Shanghai Office", "trust"),
    ("futures-co", "外滩期货", "Bund Futures", "futures"),
    ("credit-rating", "申城信用评级", "Shencheng Credit Rating", "services"),
    ("fintech-lab", "金融科技创新实验室", "Fintech Innovation Lab", "technology"),
    ("law-firm", "外滩金融律师事务所", "Bund Finance Law Firm", "services"),
]


def seed(session: Session) -> tuple[int, int]:
    """Insert what is missing, touch nothing that exists: safe to run on every start."""
    added_spaces = added_orgs = 0
    location = session.scalar(select(Location).where(Location.slug == STATION["slug"]))
    if location is None:
        location = Location(**STATION)
        session.add(location)
        session.flush()
    existing = set(session.scalars(select(Space.slug)))
    for spec in SPACES:
        if spec["slug"] not in existing:
            session.add(Space(location_id=location.id, **spec))
            added_spaces += 1
    known = set(session.scalars(select(Organisation.slug)))
    for slug, name_zh, name_en, kind in ORGANISATIONS:
        if slug not in known:
            session.add(Organisation(slug=slug, name_zh=name_zh, name_en=name_en, kind=kind))
            added_orgs += 1
    session.commit()
    return added_spaces, added_orgs
