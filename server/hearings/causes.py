"""Causes of action (案由) a case can be opened under: the one list, with stable codes.

The codes are what is stored on the case and what statistics will count by; the labels are
what pages show (the REST API sends both languages, so the list lives here alone). A code, once
used, keeps its meaning: add causes, never rename or reuse a code. Only the most common causes
of the civil disputes heard at shared-court stations are listed; the rest are ``other``.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class CauseCode(StrEnum):
    PRIVATE_LENDING = "private_lending"
    MARRIAGE_FAMILY = "marriage_family"
    PROPERTY_SERVICE = "property_service"
    LABOUR = "labour"
    SALE_CONTRACT = "sale_contract"
    NEIGHBOUR = "neighbour"
    TORT = "tort"
    OTHER = "other"


@dataclass(frozen=True, slots=True)
class Cause:
    code: CauseCode
    zh: str
    en: str


CAUSES: tuple[Cause, ...] = (
    Cause(CauseCode.PRIVATE_LENDING, "民间借贷", "Private lending"),
    Cause(CauseCode.MARRIAGE_FAMILY, "婚姻家庭", "Marriage and family"),
    Cause(CauseCode.PROPERTY_SERVICE, "物业服务", "Property management services"),
    Cause(CauseCode.LABOUR, "劳动争议", "Labour dispute"),
    Cause(CauseCode.SALE_CONTRACT, "买卖合同", "Sale contract"),
    Cause(CauseCode.NEIGHBOUR, "相邻关系", "Neighbour relations"),
    Cause(CauseCode.TORT, "侵权责任", "Tort liability"),
    Cause(CauseCode.OTHER, "其他", "Other"),
)

assert {c.code for c in CAUSES} == set(CauseCode), "every code has exactly one label"
