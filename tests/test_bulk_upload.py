"""uploadBulkTransferFile and the preview: direction, both headers, every error at its line."""

from __future__ import annotations

from models import running, settings, starting
from models.db import MAX_INT
from models.tenancy import User
from models.transfers import Transfer
from models.userdata import OwnedRecord
from tests.support import Api, QueryCounter, World

PEOPLE = "From User ID,To User ID,First Name,Last Name\n"


def people_file(filled: dict[int, object], others: list[int] = ()) -> str:
    """A people file: one row per From user; `filled` maps a row's From ID to its To cell."""
    ids = sorted({*filled, *others})
    return PEOPLE + "".join(f"{uid},{filled.get(uid, '')},First{uid},Last{uid}\n" for uid in ids)


async def stock_range(world: World, user_ids: range) -> None:
    """One CCR record for each of many users created in bulk (not in `world.users`)."""
    pks = await User.filter(tenant=world.tenant, user_id__in=list(user_ids)).values_list("id", flat=True)
    await OwnedRecord.bulk_create([OwnedRecord(data_type="CCR", owner_id=pk) for pk in pks], batch_size=1000)


def errors_by_line(upload: dict) -> dict[int, list[str]]:
    return {
        e["node"]["rowNumber"]: sorted(err["code"] for err in e["node"]["errors"])
        for e in upload["rows"]["edges"]
        if e["node"]["errors"]
    }


async def test_a_row_names_the_user_who_receives_the_data_of_the_user_in_its_to_cell(api: Api, world: World) -> None:
    await world.stock(19)
    # "From 21, To 19" means: 19's data goes to 21.
    result = await api.upload(world.admin, people_file({21: 19}, others=[10, 19, 20]))
    upload = result["upload"]
    assert result["userErrors"] == [] and upload["errorCount"] == 0
    assert (upload["rowCount"], upload["pairCount"]) == (4, 1)
    (row,) = [e["node"] for e in upload["rows"]["edges"]]
    assert row["rowNumber"] == 5 and (row["fromUserId"], row["toUserId"]) == ("21", "19")
    assert row["sourceUser"]["userId"] == 19 and row["targetUser"]["userId"] == 21
    assert row["sourceUser"]["displayName"] == "Agent19 Number19"


async def test_the_source_target_header_means_what_it_says(api: Api, world: World) -> None:
    upload = (await api.upload(world.admin, "Source User ID,Target User ID\n19,21\n"))["upload"]
    (row,) = [e["node"] for e in upload["rows"]["edges"]]
    assert row["sourceUser"]["userId"] == 19 and row["targetUser"]["userId"] == 21


async def test_a_utf8_bom_and_crlf_line_ends_are_fine(api: Api, world: World) -> None:
    await world.stock(19)
    content = "\ufeff" + people_file({21: 19}).replace("\n", "\r\n")
    upload = (await api.upload(world.admin, content.encode("utf-8")))["upload"]
    assert upload["errorCount"] == 0 and upload["pairCount"] == 1


async def test_an_upload_transfers_nothing(api: Api, world: World) -> None:
    await world.give(19, "CCR", 2)
    await api.upload(world.admin, people_file({21: 19}))
    assert await world.owned(19) == {"CCR": 2}
    assert await Transfer.filter(tenant_id=world.tenant.id).count() == 0


NOT_UTF8 = "The file is not UTF-8 text: line {} holds a byte that is not UTF-8. Save it as CSV UTF-8 and upload it again."


async def test_a_file_that_is_not_utf8_is_invalid_and_the_message_names_the_line(api: Api, world: World) -> None:
    result = await api.upload(world.admin, "From User ID,To User ID\n21,19\nJos\xe9,\n".encode("latin-1"))
    assert [(e["code"], e["message"]) for e in result["userErrors"]] == [("INVALID_FILE", NOT_UTF8.format(3))]
    assert result["upload"]["errorCount"] == 1
    # lines end as the CSV reader ends them (CRLF, LF or CR), after a byte order mark
    mixed = b"\xef\xbb\xbfFrom User ID,To User ID\r\n21,19\r22,20\n\n23,\xff\n"
    assert (await api.upload(world.admin, mixed))["userErrors"][0]["message"] == NOT_UTF8.format(5)
    # a blank first line of each kind counts; the line ends after the byte do not
    for first in (b"\n", b"\r", b"\r\n"):
        data = first + b"From User ID,To User ID\r\n21,\xff\r\n22,20\r23,19\r\n"
        assert (await api.upload(world.admin, data))["userErrors"][0]["message"] == NOT_UTF8.format(3), first


async def test_an_encoded_lone_surrogate_or_an_overlong_nul_is_not_utf8(api: Api, world: World) -> None:
    for bad in (b"\xed\xa0\x80", b"\xc0\x80"):
        result = await api.upload(world.admin, b"From User ID,To User ID\n21," + bad + b"\n")
        assert [(e["code"], e["message"]) for e in result["userErrors"]] == [("INVALID_FILE", NOT_UTF8.format(2))]


async def test_a_cell_longer_than_the_csv_reader_takes_is_invalid_at_its_line(api: Api, world: World) -> None:
    result = await api.upload(world.admin, "From User ID,To User ID\n21,19\n22,\"" + "x" * 200_000 + "\"\n")
    (error,) = result["userErrors"]
    assert error == {
        "code": "INVALID_FILE",
        "message": "The file is not a CSV file this service reads: line 3 holds a cell of more than 131,072 characters.",
    }


async def test_a_file_without_the_two_columns_is_refused(api: Api, world: World) -> None:
    result = await api.upload(world.admin, "User,Other\n21,19\n")
    assert [e["code"] for e in result["userErrors"]] == ["MISSING_COLUMNS"]
    assert [e["code"] for e in (await api.upload(world.admin, ""))["userErrors"]] == ["MISSING_COLUMNS"]


async def test_a_file_over_the_size_limit_is_too_large(api: Api, world: World, monkeypatch) -> None:
    monkeypatch.setattr(settings, "MAX_UPLOAD_BYTES", 100)
    result = await api.upload(world.admin, people_file({21: 19}, others=list(range(10, 30))))
    assert [e["code"] for e in result["userErrors"]] == ["FILE_TOO_LARGE"]


async def test_a_file_with_no_filled_row_has_no_pairs(api: Api, world: World) -> None:
    result = await api.upload(world.admin, people_file({}, others=[10, 11]))
    assert [(e["code"], e["message"]) for e in result["userErrors"]] == [
        ("NO_PAIRS", "No row requests a transfer: fill in at least one To User ID.")
    ]


async def test_two_thousand_pairs_are_accepted_and_two_thousand_and_one_are_too_many(api: Api, world: World) -> None:
    await User.bulk_create(
        [User(tenant=world.tenant, user_id=uid, first_name="P", last_name=str(uid), username=f"p{uid}") for uid in range(5000, 9002)]
    )
    await stock_range(world, range(5000, 9001, 2))
    pairs = "Source User ID,Target User ID\n" + "".join(f"{5000 + 2 * i},{5001 + 2 * i}\n" for i in range(2000))
    ok = await api.upload(world.admin, pairs)
    assert ok["userErrors"] == [] and ok["upload"]["pairCount"] == 2000
    # the new users are outside no view: the admin sees the whole tenant
    assert ok["upload"]["errorCount"] == 0
    too_many = await api.upload(world.admin, pairs + "9000,9001\n")
    assert [e["code"] for e in too_many["userErrors"]] == ["TOO_MANY_PAIRS"]
    assert too_many["upload"]["pairCount"] == 2001


# In the people form the To cell names the source; 30 owns nothing, but is outside the
# lead's view: that is all the lead learns of it.
EVERY_ROW_ERROR = (
    "From User ID,To User ID\n"
    "11,abc\n"  # 2: INVALID_USER_ID
    "12,999\n"  # 3: USER_NOT_FOUND
    "13,30\n"  # 4: USER_OUTSIDE_VIEW (for the lead)
    "14,4\n"  # 5: TENANT_ADMIN
    "15,15\n"  # 6: SAME_USER
    "16,20\n"  # 7: SOURCE_USED_TWICE with line 8
    "17,20\n"  # 8
    "18,21\n"  # 9: TARGET_USED_TWICE with line 10... and
    "18,22\n"  # 10
    "23,24\n"  # 11: 24 is a source here and a target on line 12
    "24,25\n"  # 12: USER_IN_TWO_ROLES
    "26,27\n"  # 13: fine
    "28,29\n"  # 14: NOTHING_TO_TRANSFER: 29 owns no record
    ", 19\n"  # 15: INVALID_USER_ID, an empty cell
    "31,1\n"  # 16: 1 is an ID (the admin's, outside the lead's view; so are 31 and 32)
    "32,0\n"  # 17: 0 is not: INVALID_USER_ID
    "33,998\n"  # 18: a source not found, and the target still checked
)


async def test_every_row_error_is_reported_at_its_line(api: Api, world: World) -> None:
    await world.stock(4, 15, 19, 20, 21, 22, 24, 25, 27)
    upload = (await api.upload(world.lead, EVERY_ROW_ERROR))["upload"]
    found = errors_by_line(upload)
    assert found == {
        2: ["INVALID_USER_ID"],
        3: ["USER_NOT_FOUND"],
        4: ["USER_OUTSIDE_VIEW"],
        5: ["TENANT_ADMIN"],
        6: ["SAME_USER"],
        7: ["SOURCE_USED_TWICE"],
        8: ["SOURCE_USED_TWICE"],
        9: ["TARGET_USED_TWICE"],
        10: ["TARGET_USED_TWICE"],
        11: ["USER_IN_TWO_ROLES"],
        12: ["USER_IN_TWO_ROLES"],
        14: ["NOTHING_TO_TRANSFER"],
        15: ["INVALID_USER_ID"],
        16: ["USER_OUTSIDE_VIEW", "USER_OUTSIDE_VIEW"],
        17: ["INVALID_USER_ID", "USER_OUTSIDE_VIEW"],
        18: ["USER_NOT_FOUND", "USER_OUTSIDE_VIEW"],
    }
    assert upload["errorCount"] == 16 and upload["pairCount"] == 17


async def test_every_row_error_says_in_words_what_is_wrong_and_with_whom(api: Api, world: World) -> None:
    await world.stock(4, 15, 19, 20, 21, 22, 24, 25, 27)
    upload = (await api.upload(world.lead, EVERY_ROW_ERROR))["upload"]
    said = [(e["node"]["rowNumber"], err["code"], err["field"], err["message"])
            for e in upload["rows"]["edges"] for err in e["node"]["errors"]]
    source, target = ["toUserId"], ["fromUserId"]
    twice = "Source user Agent20 Number20 (20) is the source of more than one pair (lines 7, 8)."
    targets = "Target user Agent18 Number18 (18) is the target of more than one pair (lines 9, 10)."
    chain = ("User Agent24 Number24 (24) is a source in one pair and a target in another (lines 11, 12); "
             "chains are not allowed.")
    assert said == [
        (2, "INVALID_USER_ID", source, "Source user ID ('abc') is not a positive integer."),
        (3, "USER_NOT_FOUND", source, "Source user 999 does not exist."),
        (4, "USER_OUTSIDE_VIEW", source, "Source user 30 is outside your view."),
        (5, "TENANT_ADMIN", source,
         "Source user Boss Number4 (4) is a tenant admin; tenant admins cannot be transferred."),
        (6, "SAME_USER", None, "Source and target are the same user (15)."),
        (7, "SOURCE_USED_TWICE", source, twice),
        (8, "SOURCE_USED_TWICE", source, twice),
        (9, "TARGET_USED_TWICE", target, targets),
        (10, "TARGET_USED_TWICE", target, targets),
        (11, "USER_IN_TWO_ROLES", source, chain),
        (12, "USER_IN_TWO_ROLES", target, chain),
        (14, "NOTHING_TO_TRANSFER", source, "Source user Agent29 Number29 (29) owns no records of the data "
         "types being transferred: there is nothing to transfer."),
        (15, "INVALID_USER_ID", target, "Target user ID (empty) is not a positive integer."),
        (16, "USER_OUTSIDE_VIEW", source, "Source user 1 is outside your view."),
        (16, "USER_OUTSIDE_VIEW", target, "Target user 31 is outside your view."),
        (17, "INVALID_USER_ID", source, "Source user ID ('0') is not a positive integer."),
        (17, "USER_OUTSIDE_VIEW", target, "Target user 32 is outside your view."),
        (18, "USER_NOT_FOUND", source, "Source user 998 does not exist."),
        (18, "USER_OUTSIDE_VIEW", target, "Target user 33 is outside your view."),
    ]


async def test_source_used_twice_is_rejected_with_its_row_number(api: Api, world: World) -> None:
    await world.stock(10)
    upload = (await api.upload(world.admin, "Source User ID,Target User ID\n10,11\n10,12\n"))["upload"]
    messages = [e["node"]["errors"][0]["message"] for e in upload["rows"]["edges"]]
    assert all("lines 2, 3" in m for m in messages)


async def test_a_row_shows_all_of_its_errors_and_the_cell_they_are_about(api: Api, world: World) -> None:
    upload = (await api.upload(world.lead, "From User ID,To User ID\n4,30\n"))["upload"]
    (row,) = [e["node"] for e in upload["rows"]["edges"]]
    by_code = {e["code"]: e["field"] for e in row["errors"]}
    # row "From 4, To 30": 30 is the source (To cell), 4 the target (From cell)
    assert by_code == {"USER_OUTSIDE_VIEW": ["toUserId"], "TENANT_ADMIN": ["fromUserId"]}


async def test_the_preview_pages_through_rows_and_can_show_only_errors(api: Api, world: World) -> None:
    await world.stock(10, 11, 12, 13, 14, 15, 16, 17, 18, 19)
    content = "Source User ID,Target User ID\n" + "".join(f"{s},{s + 10}\n" for s in range(10, 20)) + "11,999\n"
    upload_id = (await api.upload(world.admin, content))["upload"]["id"]
    query = """query ($id: ID!, $after: String, $only: Boolean) { bulkUpload(id: $id) {
      rows(first: 4, after: $after, onlyErrors: $only) { totalCount pageInfo { hasNextPage endCursor }
        edges { node { rowNumber } } } } }"""
    lines, after = [], None
    while True:
        page = (await api(query, world.admin, id=upload_id, after=after, only=False))["bulkUpload"]["rows"]
        assert page["totalCount"] == 11
        lines += [e["node"]["rowNumber"] for e in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert lines == list(range(2, 13))
    only = (await api(query, world.admin, id=upload_id, only=True))["bulkUpload"]["rows"]
    assert [e["node"]["rowNumber"] for e in only["edges"]] == [3, 12]  # 11 is a source twice


async def test_validation_costs_the_same_queries_for_ten_or_two_thousand_filled_rows_of_a_huge_file(world: World) -> None:
    from models import bulk

    await User.bulk_create(
        [User(tenant=world.tenant, user_id=uid, first_name="P", last_name=str(uid), username=f"p{uid}") for uid in range(5000, 9000)]
    )

    await stock_range(world, range(5000, 9000, 2))

    def huge(filled: int) -> bytes:
        """100,000 people rows; `filled` of them give user u the data of user u - 1."""
        lines = [PEOPLE] + [f"{uid},,F,L\n" for uid in range(1, 100_001)]
        for u in range(5001, 5001 + 2 * filled, 2):
            lines[u] = f"{u},{u - 1},F,L\n"
        return "".join(lines).encode()

    with QueryCounter() as few:
        small = await bulk.create_upload(world.users[1], "people.csv", huge(10))
    with QueryCounter() as many:
        large = await bulk.create_upload(world.users[1], "people.csv", huge(2000))
    assert (small.row_count, small.pair_count, large.pair_count) == (100_000, 10, 2000)
    assert large.error_count == 0
    assert 0 < many.count == few.count


async def test_a_user_id_too_large_for_any_user_is_not_found_at_its_line(api: Api, world: World) -> None:
    await world.stock(19)
    upload = (await api.upload(world.admin, "From User ID,To User ID\n21,99999999999999999999\n,19\n"))["upload"]
    rows = {e["node"]["rowNumber"]: e["node"]["errors"] for e in upload["rows"]["edges"]}
    assert [e["code"] for e in rows[2]] == ["USER_NOT_FOUND"]
    assert [e["code"] for e in rows[3]] == ["INVALID_USER_ID"]
    assert rows[3][0]["field"] == ["fromUserId"] and "empty" in rows[3][0]["message"]
    # Nothing else in the file to look up: still found by nobody, rather than an error.
    alone = (await api.upload(world.admin, "From User ID,To User ID\n99999999999999999999,99999999999999999998\n"))
    (row,) = [e["node"]["errors"] for e in alone["upload"]["rows"]["edges"]]
    assert [e["code"] for e in row] == ["USER_NOT_FOUND", "USER_NOT_FOUND"]
    # The largest ID a user can have is an ID like any other.
    world.users[MAX_INT] = await User.create(tenant=world.tenant, user_id=MAX_INT, first_name="Last", last_name="One",
                                             username="last", email="last@example.com")
    await world.give(MAX_INT, "CCR")
    largest = (await api.upload(world.admin, f"Source User ID,Target User ID\n{MAX_INT},19\n"))["upload"]
    assert largest["errorCount"] == 0 and largest["pairCount"] == 1


async def test_messages_about_pairs_name_the_users(api: Api, world: World) -> None:
    upload = (await api.upload(world.admin, "Source User ID,Target User ID\n10,11\n10,12\n"))["upload"]
    message = upload["rows"]["edges"][0]["node"]["errors"][0]["message"]
    assert "Agent10 Number10 (10)" in message


async def test_the_preview_shows_what_each_pair_would_move_and_delete(api: Api, world: World) -> None:
    await world.give(19, "CCR", 3)
    await world.give(19, "PROJECT", 1)
    await world.give(21, "PROJECT", 2)
    await world.give(21, "CCR", 5)
    upload = (await api.upload(world.admin, people_file({21: 19})))["upload"]
    query = """query ($id: ID!) { bulkUpload(id: $id) { rows { edges { node {
      impact { dataType { key } moves deletes } } } } } }"""
    (row,) = (await api(query, world.admin, id=upload["id"]))["bulkUpload"]["rows"]["edges"]
    impact = {i["dataType"]["key"]: (i["moves"], i["deletes"]) for i in row["node"]["impact"]}
    assert impact["CCR"] == (3, 0) and impact["PROJECT"] == (1, 2)
    plan = await api(
        "{ transferPlan(sourceUserId: 19, targetUserId: 21) { impact { dataType { key } moves deletes } } }", world.admin
    )
    assert row["node"]["impact"] == plan["transferPlan"]["impact"]


async def test_a_user_in_a_queued_transfer_is_busy_in_the_preview_as_source_or_target(api: Api, world: World) -> None:
    await world.stock(10, 11, 12, 14)
    queued, _ = await starting.start_single(world.users[1], 10, 11)  # no worker job: it stays QUEUED
    upload = (await api.upload(world.admin, "Source User ID,Target User ID\n12,10\n11,13\n14,15\n"))["upload"]
    rows = {e["node"]["rowNumber"]: e["node"]["errors"] for e in upload["rows"]["edges"]}
    busy = "user Agent{0} Number{0} ({0}) is in a transfer that is queued or running."
    assert [(e["code"], e["field"], e["message"]) for e in rows[2]] == [("USER_BUSY", ["toUserId"], "Target " + busy.format(10))]
    assert [(e["code"], e["field"], e["message"]) for e in rows[3]] == [("USER_BUSY", ["fromUserId"], "Source " + busy.format(11))]
    assert rows[4] == [] and upload["errorCount"] == 2
    await running.cancel(queued)


async def test_a_row_whose_source_owns_nothing_is_an_error_at_its_line_naming_the_source(api: Api, world: World) -> None:
    await world.stock(19)
    upload = (await api.upload(world.admin, people_file({21: 19, 22: 20})))["upload"]  # 20 owns nothing
    rows = {e["node"]["rowNumber"]: e["node"]["errors"] for e in upload["rows"]["edges"]}
    assert rows[2] == []
    (error,) = rows[3]
    assert (error["code"], error["field"]) == ("NOTHING_TO_TRANSFER", ["toUserId"])  # the To cell names the source
    assert error["message"] == (
        "Source user Agent20 Number20 (20) owns no records of the data types being transferred: there is nothing to transfer."
    )
    assert upload["errorCount"] == 1


async def test_a_half_filled_pairs_row_is_invalid_at_its_line_never_dropped(api: Api, world: World) -> None:
    await world.stock(10, 12, 14)
    upload = (await api.upload(world.admin, "Source User ID,Target User ID\n12,\n10,11\n,13\n14,15\n"))["upload"]
    rows = {e["node"]["rowNumber"]: e["node"]["errors"] for e in upload["rows"]["edges"]}
    assert sorted(rows) == [2, 3, 4, 5] and upload["pairCount"] == 4
    assert [(e["code"], e["field"]) for e in rows[2]] == [("INVALID_USER_ID", ["toUserId"])]
    assert [(e["code"], e["field"]) for e in rows[4]] == [("INVALID_USER_ID", ["fromUserId"])]
    assert rows[3] == rows[5] == []


async def test_a_user_outside_the_view_named_twice_is_not_named_in_the_message_about_pairs(api: Api, world: World) -> None:
    await world.stock(11, 12)
    content = "Source User ID,Target User ID\n30,13\n30,14\n11,31\n12,31\n32,15\n16,32\n"
    upload = (await api.upload(world.lead, content))["upload"]
    messages = {
        (e["node"]["rowNumber"], err["code"]): err["message"] for e in upload["rows"]["edges"] for err in e["node"]["errors"]
    }
    assert messages[(2, "SOURCE_USED_TWICE")] == "Source user 30 is the source of more than one pair (lines 2, 3)."
    assert messages[(4, "TARGET_USED_TWICE")] == "Target user 31 is the target of more than one pair (lines 4, 5)."
    assert messages[(6, "USER_IN_TWO_ROLES")].startswith("User 32 is a source in one pair")
    text = " ".join(messages.values())
    for uid in (30, 31, 32):
        user = world.users[uid]
        assert user.last_name not in text and user.first_name not in text


async def test_a_pair_of_a_user_with_themselves_makes_no_chain_and_hides_no_other_chain(api: Api, world: World) -> None:
    """10 and 12 are each a source and a target, but only of their own SAME_USER pair: that and the
    used-twice rule are all they get; the real chain through 15 is still reported."""
    await world.stock(10, 12, 13, 14, 15)
    content = "Source User ID,Target User ID\n10,10\n10,11\n12,12\n13,12\n14,15\n15,16\n"
    upload = (await api.upload(world.admin, content))["upload"]
    assert {line: sorted(codes) for line, codes in errors_by_line(upload).items()} == {
        2: ["SAME_USER", "SOURCE_USED_TWICE"],
        3: ["SOURCE_USED_TWICE"],
        4: ["SAME_USER", "TARGET_USED_TWICE"],
        5: ["TARGET_USED_TWICE"],
        6: ["USER_IN_TWO_ROLES"],
        7: ["USER_IN_TWO_ROLES"],
    }


async def test_the_last_cell_of_a_file_is_read_as_written_whatever_it_ends_with(api: Api, world: World) -> None:
    """Only the line ends that close the file are dropped, never a character of its last cell."""
    await world.stock(10)
    upload = (await api.upload(world.admin, "Source User ID,Target User ID\n10,11X\r\n\n"))["upload"]
    (row,) = [e["node"] for e in upload["rows"]["edges"]]
    assert [e["message"] for e in row["errors"]] == ["Target user ID ('11X') is not a positive integer."]
