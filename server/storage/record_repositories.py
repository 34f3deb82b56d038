"""SQL of the hearing record (issue 15): documents, their saved versions, signatures and
refusals, and one-time signing codes. Kept apart from ``repositories`` so that feature branches
do not edit one file."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import select, update

from server.storage.models import (
    RecordDocument,
    RecordSignature,
    RecordSigningCode,
    RecordVersion,
)
from server.storage.repositories import _Repository


class RecordRepository(_Repository):
    async def document(
        self, hearing_id: str, kind: str, *, lock: bool = False
    ) -> RecordDocument | None:
        query = select(RecordDocument).where(
            RecordDocument.hearing_id == hearing_id, RecordDocument.kind == kind
        )
        if lock:
            query = query.with_for_update()
        return await self._session.scalar(query)

    async def get_document(self, document_id: str) -> RecordDocument | None:
        return await self._session.get(RecordDocument, document_id)

    async def documents(self, hearing_id: str) -> Sequence[RecordDocument]:
        result = await self._session.scalars(
            select(RecordDocument)
            .where(RecordDocument.hearing_id == hearing_id)
            .order_by(RecordDocument.kind)
        )
        return result.all()

    async def add_document(self, document: RecordDocument) -> RecordDocument:
        return await self._add(document)

    async def add_version(self, version: RecordVersion) -> RecordVersion:
        return await self._add(version)

    async def version(self, document_id: str, version: int) -> RecordVersion | None:
        return await self._session.scalar(
            select(RecordVersion).where(
                RecordVersion.document_id == document_id, RecordVersion.version == version
            )
        )

    async def versions(self, document_id: str) -> Sequence[RecordVersion]:
        result = await self._session.scalars(
            select(RecordVersion)
            .where(RecordVersion.document_id == document_id)
            .order_by(RecordVersion.version)
        )
        return result.all()

    async def add_signature(self, signature: RecordSignature) -> RecordSignature:
        return await self._add(signature)

    async def signatures(self, document_id: str) -> Sequence[RecordSignature]:
        """Every signature and refusal on the document, oldest first."""
        result = await self._session.scalars(
            select(RecordSignature)
            .where(RecordSignature.document_id == document_id)
            .order_by(RecordSignature.at, RecordSignature.id)
        )
        return result.all()

    async def add_code(self, code: RecordSigningCode) -> RecordSigningCode:
        return await self._add(code)

    async def retire_codes(self, document_id: str, participant_id: str) -> None:
        """Spend every open code of a signer (a new one replaces them)."""
        await self._session.execute(
            update(RecordSigningCode)
            .where(
                RecordSigningCode.document_id == document_id,
                RecordSigningCode.participant_id == participant_id,
                RecordSigningCode.used_at.is_(None),
            )
            .values(used_at=RecordSigningCode.created_at)
        )

    async def codes(self, document_id: str, participant_id: str) -> Sequence[RecordSigningCode]:
        """A signer's codes, newest first."""
        result = await self._session.scalars(
            select(RecordSigningCode)
            .where(
                RecordSigningCode.document_id == document_id,
                RecordSigningCode.participant_id == participant_id,
            )
            .order_by(RecordSigningCode.created_at.desc(), RecordSigningCode.id)
        )
        return result.all()
