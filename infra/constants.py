"""Every name the stacks, functions and tests share. Change a name here, nowhere else."""

from __future__ import annotations

# Lambda handler entry points (module paths inside the `functions/` code asset).
API_HANDLER = "billpay.api.handler.handler"
# The product API's routes that call Codat (offboarding, the payables writes): same resolver.
API_CODAT_HANDLER = "billpay.api.codat_handler.handler"
REGISTER_COMPANY_HANDLER = "billpay.onboarding.handlers.register_company"
WAIT_FOR_SIGNAL_HANDLER = "billpay.onboarding.handlers.wait_for_signal"
RECORD_AUTHORIZATION_HANDLER = "billpay.onboarding.handlers.record_authorization"
RECORD_INITIAL_READ_HANDLER = "billpay.onboarding.handlers.record_initial_read"
MARK_READY_HANDLER = "billpay.onboarding.handlers.mark_ready"
RECORD_FAILURE_HANDLER = "billpay.onboarding.handlers.record_failure"
# The onboarding steps that call Codat (their module imports the SDK).
CREATE_CODAT_COMPANY_HANDLER = "billpay.onboarding.codat_handlers.create_codat_company"
CREATE_CONNECTION_HANDLER = "billpay.onboarding.codat_handlers.create_connection"
RECONCILE_HANDLER = "billpay.onboarding.codat_handlers.reconcile"
LOAD_COMPANY_DATA_HANDLER = "billpay.onboarding.codat_handlers.load_company_data"
# The payables sync's one step (imports the SDK: it calls Codat).
SYNC_PAYABLES_HANDLER = "billpay.bills.codat_handlers.sync_payables"
REQUEST_PAYABLES_SYNC_HANDLER = "billpay.bills.handlers.request_sync"
WEBHOOK_INGRESS_HANDLER = "billpay.webhooks.ingress.handler"
WEBHOOK_PROCESSOR_HANDLER = "billpay.webhooks.processor.handler"
# The payment state machine's steps; Check, Submit and Reconcile call Codat (their module imports the SDK).
TAKE_BILL_HANDLER = "billpay.payments.handlers.take_bill"
CHECK_PAYMENT_HANDLER = "billpay.payments.codat_handlers.check"
SUBMIT_PAYMENT_HANDLER = "billpay.payments.codat_handlers.submit"
RECONCILE_PAYMENT_HANDLER = "billpay.payments.codat_handlers.reconcile"
FINISH_PAYMENT_HANDLER = "billpay.payments.handlers.finish"
GIVE_UP_PAYMENT_HANDLER = "billpay.payments.handlers.give_up"

# Environment variable names the functions read (validated by billpay.core.settings).
ENV_COMPANIES_TABLE = "COMPANIES_TABLE"
ENV_ONBOARDING_STATE_MACHINE_ARN = "ONBOARDING_STATE_MACHINE_ARN"
ENV_CODAT_BASE_URL = "CODAT_BASE_URL"
ENV_CODAT_API_KEY_SECRET_ARN = "CODAT_API_KEY_SECRET_ARN"  # noqa: S105 - a variable name, not a secret
ENV_EVENT_BUS_NAME = "EVENT_BUS_NAME"
ENV_PAYABLES_TABLE = "PAYABLES_TABLE"
ENV_PAGE_TOKEN_KEY_SECRET_ARN = "PAGE_TOKEN_KEY_SECRET_ARN"  # noqa: S105 - a variable name
ENV_PAYABLES_SYNC_STATE_MACHINE_ARN = "PAYABLES_SYNC_STATE_MACHINE_ARN"
ENV_STAGE = "STAGE"
ENV_WEBHOOK_EVENTS_TABLE = "WEBHOOK_EVENTS_TABLE"
ENV_WEBHOOK_QUEUE_URL = "WEBHOOK_QUEUE_URL"
ENV_WEBHOOK_SECRET_ARN = "WEBHOOK_SECRET_ARN"  # noqa: S105 - a variable name, not a secret
ENV_PAYMENTS_TABLE = "PAYMENTS_TABLE"
ENV_PAYMENT_STATE_MACHINE_ARN = "PAYMENT_STATE_MACHINE_ARN"
ENV_PAYMENT_POLICY = "PAYMENT_POLICY"

# CloudFormation output ids (stable: the local cloud, tests and operators read them).
OUTPUT_API_URL = "ApiUrl"
OUTPUT_COMPANIES_TABLE = "CompaniesTableName"
OUTPUT_ONBOARDING_STATE_MACHINE_ARN = "OnboardingStateMachineArn"
OUTPUT_EVENT_BUS_NAME = "EventBusName"
OUTPUT_CODAT_API_KEY_SECRET_ARN = "CodatApiKeySecretArn"  # noqa: S105 - an output id, not a secret
OUTPUT_ALARM_TOPIC_ARN = "AlarmTopicArn"
OUTPUT_PAYABLES_TABLE = "PayablesTableName"
OUTPUT_PAYABLES_SYNC_STATE_MACHINE_ARN = "PayablesSyncStateMachineArn"
OUTPUT_WEBHOOK_URL = "CodatWebhookUrl"
OUTPUT_WEBHOOK_SECRET_ARN = "CodatWebhookSecretArn"  # noqa: S105 - an output id, not a secret
OUTPUT_WEBHOOK_EVENTS_TABLE = "WebhookEventsTableName"
OUTPUT_WEBHOOK_QUEUE_URL = "WebhookQueueUrl"
OUTPUT_WEBHOOK_DLQ_URL = "WebhookDeadLetterQueueUrl"
OUTPUT_DASHBOARD_NAME = "OperationsDashboardName"
OUTPUT_PAYMENTS_TABLE = "PaymentsTableName"
OUTPUT_PAYMENT_STATE_MACHINE_ARN = "PaymentStateMachineArn"

# Paths of the product backend API.
ROUTE_COMPANIES = "companies"
ROUTE_RELINK = "relink"
ROUTE_BILLS = "bills"
ROUTE_ATTACHMENTS = "attachments"
ROUTE_SUPPLIERS = "suppliers"
ROUTE_PAYMENT_ACCOUNTS = "payment-accounts"
# Path of the public webhook API where Codat posts (POST /webhooks/codat).
ROUTE_WEBHOOKS = "webhooks"
ROUTE_CODAT = "codat"
ROUTE_PAYMENTS = "payments"
