-- Protobuf's wire format in SQL, for the events a statement writes straight into the outbox
-- with the change that caused them: the fill's line.reserved, one per filled line
-- (`apply_fills`, repeatable/fill.sql), built where the rows are instead of read back,
-- built in Python and written again. Only what those bodies need: varints of integers and
-- length-delimited strings, each field left out when it holds its default (0, ''), and in
-- field-number order, as protobuf's serializer writes them, so the bytes are the same.
-- Parts known before the statement (a timestamp, the cause) are encoded by protobuf itself
-- in Python and passed in as bytes. tests/integration/test_protobuf_sql.py holds these
-- functions to the protobuf library's bytes.
-- Plain SQL expressions, so that Postgres inlines them into the calling statement (no call
-- per row): hence not STRICT (a strict function whose body is a CASE is not inlined; a null
-- argument still comes out null, through pb_varint_long) and STABLE where they convert text
-- to UTF-8 (convert_to is stable).
-- A repeatable file: applied again whenever it changes (create or replace).

-- Varint of any int64 (a negative one as its 64-bit two's complement, 10 bytes), digit by
-- digit: the general case, for values of 2^35 and above that pb_varint does not unroll.
create or replace function pb_varint_long(v bigint) returns bytea
language plpgsql immutable strict parallel safe as $$
declare
    u numeric := case when v < 0 then v::numeric + 18446744073709551616 else v end;
    out bytea := '';
begin
    while u >= 128 loop
        out := out || set_byte('\x00'::bytea, 0, (mod(u, 128) + 128)::int);
        u := div(u, 128);
    end loop;
    return out || set_byte('\x00'::bytea, 0, u::int);
end $$;

-- Varint of an int64: 7 bits a byte, low bits first, the high bit set on all but the last
-- byte. Unrolled up to 5 bytes (below 2^35, every quantity and id this service writes).
create or replace function pb_varint(v bigint) returns bytea
language sql immutable parallel safe as $$
    select case
        when v >= 0 and v < 128 then
            set_byte('\x00'::bytea, 0, v::int)
        when v >= 0 and v < 16384 then
            set_byte(set_byte('\x0000'::bytea,
                0, (v & 127 | 128)::int),
                1, (v >> 7)::int)
        when v >= 0 and v < 2097152 then
            set_byte(set_byte(set_byte('\x000000'::bytea,
                0, (v & 127 | 128)::int),
                1, (v >> 7 & 127 | 128)::int),
                2, (v >> 14)::int)
        when v >= 0 and v < 268435456 then
            set_byte(set_byte(set_byte(set_byte('\x00000000'::bytea,
                0, (v & 127 | 128)::int),
                1, (v >> 7 & 127 | 128)::int),
                2, (v >> 14 & 127 | 128)::int),
                3, (v >> 21)::int)
        when v >= 0 and v < 34359738368 then
            set_byte(set_byte(set_byte(set_byte(set_byte('\x0000000000'::bytea,
                0, (v & 127 | 128)::int),
                1, (v >> 7 & 127 | 128)::int),
                2, (v >> 14 & 127 | 128)::int),
                3, (v >> 21 & 127 | 128)::int),
                4, (v >> 28)::int)
        else pb_varint_long(v)
    end $$;

-- An integer or enum field (wire type 0); nothing when it is 0.
create or replace function pb_int(field int, v bigint) returns bytea
language sql immutable parallel safe as $$
    select case when v = 0 then ''::bytea else pb_varint(field::bigint << 3) || pb_varint(v) end
$$;

-- A string field (wire type 2: its UTF-8 length, then the bytes); nothing when it is ''.
create or replace function pb_text(field int, s text) returns bytea
language sql stable parallel safe as $$
    select case when s = '' then ''::bytea
                else pb_varint(field::bigint << 3 | 2)
                     || pb_varint(octet_length(convert_to(s, 'UTF8')))
                     || convert_to(s, 'UTF8') end
$$;

-- allocation.v1.LineStatus's number of a line's status (the `line.status` column's text).
create or replace function pb_line_status(status text) returns int
language sql immutable parallel safe as $$
    select case status
        when 'BACKORDERED' then 1
        when 'PARTIALLY_RESERVED' then 2
        when 'RESERVED' then 3
        when 'PARTIALLY_FULFILLED' then 4
        when 'FULFILLED' then 5
        when 'CANCELLED' then 6
    end $$;

-- The body of a line.reserved (allocation.v1.LineReserved), fields in number order:
-- event_id (1), `occurred` (field 2, encoded by the caller: one fill has one timestamp), the
-- SKU (3), the line's fields 4 to 11, `cause` (field 12, encoded by the caller) and the
-- location (13).
-- PL/pgSQL, unlike the helpers: its one expression (the helpers inlined into it) is planned
-- once per session and kept. Inlined into the calling statement instead, its expression
-- tree would be planned again with that statement — every time, for a one-line fill, whose
-- plan Postgres does not cache (3 ms a fill against 0.3 ms; a drain's chunks of 2,000 lines
-- would not notice either way).
drop function if exists line_reserved_body(uuid, bytea, text, text, bigint, bigint, bigint,
                                           bigint, text, bigint, bytea, text);
create or replace function line_reserved_body(
    event_id uuid, occurred bytea, sku text, order_id text, line_id text, quantity bigint,
    reserved_now bigint, reserved bigint, backordered bigint, status text,
    reservation_id bigint, cause bytea, location_id text
) returns bytea
language plpgsql stable parallel safe as $$
begin
    return pb_text(1, event_id::text) || occurred || pb_text(3, sku)
        || pb_text(4, order_id) || pb_text(5, line_id) || pb_int(6, quantity)
        || pb_int(7, reserved_now) || pb_int(8, reserved) || pb_int(9, backordered)
        || pb_int(10, pb_line_status(status)) || pb_int(11, reservation_id) || cause
        || pb_text(13, location_id);
end $$;
