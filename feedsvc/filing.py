"""What an item is filed under: its topics and its feeds.

Built from the configuration and the registry alone (no store connection), so the worker
processes of a parallel build can build their own copy.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .config import Config
from .model import Filed, Item, feed_key
from .registry import Organisation, Registry, load_registry
from .topics import assign_topics, load_taxonomy, release_caches


def memberships(item: Item, topics: tuple[str, ...], registry: Registry) -> frozenset[str]:
    """Feed keys an item belongs to: everything, its ministry, its organisations, its topics."""
    lang = item.lang
    feeds = [feed_key("all", None, lang)]
    if item.org:
        chain = registry.chain(item.org)
        feeds.append(feed_key("ministry", chain[-1], lang))
        feeds.extend(feed_key("org", slug, lang) for slug in chain[:-1])
    feeds.extend(feed_key("topic", topic, lang) for topic in topics)
    return frozenset(feeds)


@dataclass
class Filing:
    config: Config
    registry: Registry
    taxonomy: Any  # feedsvc.topics.Taxonomy, or None when topics are switched off

    @classmethod
    def load(cls, config: Config, live: Iterable[Organisation] = ()) -> Filing:
        return cls(config, load_registry(live), load_taxonomy(config.topics_file))

    @property
    def topic_names(self) -> dict[str, dict[str, str]]:
        """Each topic's name per language, for the feeds' titles."""
        return {topic.slug: topic.names for topic in self.taxonomy.topics} \
            if self.taxonomy else {}

    @property
    def fingerprint(self) -> str:
        """Changes when organisations or topics change: then every item is filed anew."""
        return "|".join([self.registry.fingerprint,
                         self.taxonomy.fingerprint if self.taxonomy else "no-topics"])

    def file(self, item: Item) -> Filed:
        topics = self.classify(item)
        return Filed(topics, memberships(item, topics, self.registry))

    def release_caches(self) -> None:
        """Forget the words the topic classifier learned (it learns them again as it meets
        them)."""
        if self.taxonomy is not None:
            release_caches(self.taxonomy)

    def classify(self, item: Item) -> tuple[str, ...]:
        if self.taxonomy is None:
            return ()
        chain = self.registry.chain(item.org) if item.org else ()
        kind = self.registry.get(item.org).kind if item.org else None
        return assign_topics(self.taxonomy, item, org_kind=kind, org_chain=chain)
