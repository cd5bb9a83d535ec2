"""The write services: every change to conversation state goes through one of these modules."""
