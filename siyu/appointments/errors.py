"""Appointment errors: messages in Chinese, since the web chat and the console show them."""

from __future__ import annotations

from siyu.errors import Conflict, InvalidInput, NotFound


class SlotTaken(Conflict):
    """Someone else holds the slot (the unique index refused the second booking)."""

    code = "slot_taken"


class SlotUnavailable(Conflict):
    """The slot is withdrawn or already past."""

    code = "slot_unavailable"


class InvalidTransition(Conflict):
    """The appointment is not in a state that allows the change (cancel an attended one)."""

    code = "invalid_appointment_transition"


class AppointmentNotFound(NotFound):
    code = "appointment_not_found"


class SlotNotFound(NotFound):
    code = "slot_not_found"


class InvalidAppointmentInput(InvalidInput):
    code = "invalid_appointment_input"
