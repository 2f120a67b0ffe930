"""What an item is filed under: its topics, and the site the feeds are published on.

Built from the configuration and the registry alone (no store connection), so the worker
processes of a parallel build can build their own copy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from .config import Config
from .model import Item
from .registry import Organisation, Registry, load_registry
from .render import Site


@dataclass
class Filing:
    config: Config
    registry: Registry
    taxonomy: Any  # feedsvc.topics.Taxonomy, or None when topics are switched off
    classifier: Callable[[Item], tuple[str, ...]] | None = None

    @classmethod
    def load(cls, config: Config, live: Iterable[Organisation] = (),
             classifier: Callable[[Item], tuple[str, ...]] | None = None) -> Filing:
        from .topics import load_taxonomy

        return cls(config, load_registry(live), load_taxonomy(config.topics_file), classifier)

    @property
    def site(self) -> Site:
        names = {topic.slug: topic.names for topic in self.taxonomy.topics} \
            if self.taxonomy else {}
        return Site(self.config.normalised_base_url, self.config.language, self.registry, names)

    @property
    def fingerprint(self) -> str:
        """Changes when organisations or topics change: then every item is filed anew."""
        return "|".join([self.registry.fingerprint,
                         self.taxonomy.fingerprint if self.taxonomy else "no-topics"])

    def classify(self, item: Item) -> tuple[str, ...]:
        if self.classifier is not None:
            return self.classifier(item)
        if self.taxonomy is None:
            return ()
        from .topics import assign_topics

        chain = self.registry.chain(item.org) if item.org else ()
        kind = self.registry.get(item.org).kind if item.org else None
        return assign_topics(self.taxonomy, item, org_kind=kind, org_chain=chain)
