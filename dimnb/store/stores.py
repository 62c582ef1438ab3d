"""Both stores of one data directory, opened together."""

from __future__ import annotations

from dataclasses import dataclass, field

from dimnb.datadir import DataDir, resolve_data_dir
from dimnb.errors import NotInitialized
from dimnb.store.callstore import CallStore
from dimnb.store.statestore import AnyStateStore, open_state_store


@dataclass
class Stores:
    data: DataDir
    calls: CallStore = field(init=False)
    state: AnyStateStore = field(init=False)

    def __post_init__(self) -> None:
        self.calls = CallStore(self.data.calls_dir)
        self.state = open_state_store(self.data.state_db)
        self.calls.writer_guard = self.state.calls_writer

    @classmethod
    def open(cls, data_dir: str | None = None, *, create: bool = False) -> "Stores":
        """Open a data directory; with ``create`` make and migrate both stores first."""
        stores = cls(resolve_data_dir(data_dir))
        if create:
            stores.initialize()
        elif not (stores.state.exists() and stores.calls.exists()):
            raise NotInitialized(
                f"{stores.data.root} is not a dimnb data directory yet: run `dimnb init --data {stores.data.root}`"
            )
        else:
            stores.state.migrate()
            stores.migrate_calls()
        return stores

    def migrate_calls(self) -> None:
        """Publish a migrated generation when the call store is older than this dimnb (readers never migrate)."""
        from dimnb.store import callschema

        if callschema.schema_version(self.calls.connection()) < callschema.SCHEMA_VERSION:
            with self.calls.write():
                pass

    def initialize(self) -> None:
        self.data.root.mkdir(parents=True, exist_ok=True)
        self.state.migrate()
        self.calls.initialize()

    def close(self) -> None:
        self.calls.close()
        self.state.close()
