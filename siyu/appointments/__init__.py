"""Appointments with advisors (Smart BA): service types, published slots, bookings and
their events; the web chat's booking dialogue, the advisor's calendar and ICS files."""
