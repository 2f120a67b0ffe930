"""Shared fixtures."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from govkz_fake import GovkzFake


@pytest.fixture
def govkz_server() -> Iterator[GovkzFake]:
    """A fresh gov.kz look-alike on 127.0.0.1: organisations mfa and mfa-brussels, 25 news
    each in kk, ru and en; the listing wants a ticket."""
    with GovkzFake(orgs=["mfa", "mfa-brussels"], items=25) as server:
        yield server
