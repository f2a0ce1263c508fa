"""The only code shipped to Lambda, one package per capability.

core/        what every capability shares: settings, errors, logging, AWS clients (botocore)
companies/   the SMB aggregate: its record and statuses, the table, and where webhooks meet waits
onboarding/  starting onboarding and the onboarding state machine's steps
api/         the product backend's REST API (routes of every capability)

Inside a capability: `handler(s).py` are thin entry points (parse into a model, call one logic
function, answer); `logic.py` holds the business rules as plain functions over `ports.py`;
adapters (`repository.py`, `workflow.py`, ...) are the only modules that call AWS or Codat;
`models.py` holds the pydantic models at the boundary.
"""
