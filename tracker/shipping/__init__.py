"""Shipping: how what a training loop handed over reaches the store, exactly once.

The logger (`tracker.logger`) appends every call to the run's write-ahead log (`wal`: segment
files, their acknowledged positions in `state.json`, the lock that lets one shipper at a time
hold a log). A shipper reads the log (`reader`), sends it through an injected `Sender`
(`sender`: MLflow's, one attempt per call) by the shipping rules (`shipper`: batching with
`batch` and `config`, retries, splitting off refused entries into the `rejected` file,
acknowledgement, the run's end), either live in a child forked from the training process
(`live`; `handle` is the training process's side of it, `wake` how it is woken) or by hand in
`newsdesk sync` (`sync`), which also replays the spool files of earlier versions through the
one reader left for them (`legacy_spool`).
"""
