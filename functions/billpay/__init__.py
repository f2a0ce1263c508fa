"""The only code shipped to Lambda.

handlers/  thin entry points: parse the event into a model, call one logic function, answer.
logic/     business rules as plain functions over ports; no AWS, HTTP or event shapes.
adapters/  the only modules that call AWS (boto3) or Codat; each implements a port.
models/    pydantic models at every boundary (requests, records, settings).
"""
