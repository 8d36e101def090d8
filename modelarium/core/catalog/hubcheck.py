"""The Hub facts the validator needs, asked straight from the Hub (no database, no cache).

Used by ``modelarium catalog validate DIR --hub`` in a catalog's CI, where there is no Modelarium
database; the bot asks through ``core.hub`` and its cache instead.
"""

from __future__ import annotations

from huggingface_hub import errors as hf_errors

from modelarium.config.settings import Settings
from modelarium.core.catalog.validate import HubFacts, HubLookup
from modelarium.core.clients.huggingface import hub_api, hub_errors
from modelarium.core.errors import NotFoundError
from modelarium.core.hub.models import license_of


def direct_hub_lookup(settings: Settings) -> HubLookup:
    api = hub_api(settings)

    def lookup(repo: str, commit: str) -> HubFacts:
        with hub_errors(f"{repo}@{commit[:12]}"):
            try:
                info = api.model_info(repo, revision=commit, timeout=settings.hub_timeout)
            except hf_errors.GatedRepoError:
                raise  # hub_errors says how to get access
            except hf_errors.RevisionNotFoundError:
                return HubFacts(repo_exists=True, commit_exists=False)
            except hf_errors.RepositoryNotFoundError:
                return HubFacts(repo_exists=False, commit_exists=False)
        card = getattr(info, "card_data", None)
        card_dict = card.to_dict() if card is not None and hasattr(card, "to_dict") else None
        return HubFacts(True, True, license_of(list(info.tags or []), card_dict))

    return lookup


def latest_commit(settings: Settings, repo: str) -> tuple[str, str | None]:
    """(head commit of the default branch, licence there), asked now: catalog_watch must see a
    new commit the moment it lands, not when a cached model card expires."""
    api = hub_api(settings)
    with hub_errors(repo):
        info = api.model_info(repo, timeout=settings.hub_timeout)
    card = getattr(info, "card_data", None)
    card_dict = card.to_dict() if card is not None and hasattr(card, "to_dict") else None
    if not info.sha:
        raise NotFoundError(f"{repo}: the Hub gave no commit")
    return str(info.sha), license_of(list(info.tags or []), card_dict)
